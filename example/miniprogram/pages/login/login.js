/* global getApp, Page, wx */
// Logging in (ensureLogin shares the app's one login) and the phone-number button's code.
import { explain } from '../../errors.js'

const auth = getApp().auth

Page({
  data: { busy: false, message: '', phone: '', banned: false, until: '' },

  onLoad (query) {
    if (query.until !== undefined) this.setData({ banned: true, until: query.until })
  },

  async onLogin () {
    this.setData({ busy: true, message: '' })
    try {
      await auth.ensureLogin()
      wx.redirectTo({ url: '/pages/orders/orders' })
    } catch (err) {
      this.setData({ message: explain(err) })
    } finally {
      this.setData({ busy: false })
    }
  },

  async onPhone (e) {
    // No code: the user declined. The code works once, for 5 minutes.
    if (!e.detail.code) return
    try {
      const { phoneNumber } = await auth.phone(e.detail.code)
      this.setData({ phone: phoneNumber })
    } catch (err) {
      this.setData({ message: explain(err) })
    }
  }
})
