/* global getApp, Page, wx */
// A page of the host's protected routes: request() adds the Bearer token, refreshes it once for every
// caller, logs in again when the session ended, and steps up for a route behind authorize({ stepUp }).
import { explain } from '../../errors.js'

const auth = getApp().auth

Page({
  data: { orders: [], message: '' },

  async onShow () {
    try {
      const res = await auth.request({ url: '/api/orders' })
      this.setData({ orders: res.data.orders, message: '' })
    } catch (err) {
      this.setData({ message: explain(err) })
    }
  },

  async onRefund () {
    // The host's route needs a recent step-up: the first answer is AUTH_STEP_UP_REQUIRED, the client
    // sends a fresh wx.login() code to /auth/step-up and repeats the request.
    try {
      await auth.request({ url: '/api/refund', method: 'POST', data: {} })
      wx.showToast({ title: 'Refunded' })
    } catch (err) {
      this.setData({ message: explain(err) })
    }
  },

  async onLogout () {
    await auth.logout()
    wx.reLaunch({ url: '/pages/login/login' })
  }
})
