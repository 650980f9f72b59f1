/* global App, wx */
// One client for the whole mini program, shared by every page through getApp().auth: one login, one
// refresh in flight, whatever the pages do at once.
import { createWechatAuthClient } from './lib/wechat-auth-client.js'
import { GATEWAY } from './config.js'

App({
  auth: createWechatAuthClient({
    platform: wx,
    baseUrl: GATEWAY,
    deviceType: 'mp',
    deviceName: wx.getDeviceInfo ? wx.getDeviceInfo().model : undefined
  }),

  onLaunch () {
    this.auth.on('loggedOut', ({ reason, detail }) => {
      // The client logs in again by itself; the user is told why the session ended.
      if (reason === 'AUTH_SESSION_REPLACED') wx.showToast({ title: 'Signed in on another phone', icon: 'none' })
      if (reason === 'AUTH_SESSION_KICKED') wx.showToast({ title: `Signed out (${detail ? detail.reason : 'by the service'})`, icon: 'none' })
      if (reason === 'AUTH_ACCOUNT_BANNED') wx.reLaunch({ url: `/pages/login/login?until=${detail && detail.until ? detail.until : ''}` })
    })
    // Tokens from the last run come back from storage; without them this is the one wx.login().
    this.auth.ensureLogin().catch(() => {})
  }
})
