/* global getApp, Page, wx */
// The page a web QR login's mini-program code opens (QR_PAGE=pages/qr-confirm/qr-confirm): its `scene`
// is the login's id. The user sees what is asking (the web page's IP, browser and time) and confirms or
// cancels; the web page then collects its session (or is told it was cancelled).
import { explain } from '../../errors.js'

const auth = getApp().auth

Page({
  data: { id: '', asking: null, done: '', message: '' },

  async onLoad (options) {
    // WeChat passes the scene URL-encoded.
    const id = decodeURIComponent(options.scene || '')
    this.setData({ id })
    try {
      // Logs in first if needed; answers { state, expiresIn, client: { ip, userAgent, createdAt } } for this screen.
      this.setData({ asking: await auth.qr.scan(id) })
    } catch (err) {
      this.setData({ message: explain(err) })
    }
  },

  async onConfirm () {
    try {
      await auth.qr.confirm(this.data.id)
      this.setData({ done: 'Signed in on the web' })
    } catch (err) {
      this.setData({ message: explain(err) })
    }
  },

  async onCancel () {
    try {
      await auth.qr.cancel(this.data.id)
      this.setData({ done: 'Cancelled' })
      wx.navigateBack({ fail: () => {} })
    } catch (err) {
      this.setData({ message: explain(err) })
    }
  }
})
