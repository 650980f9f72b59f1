// Refreshing: one rotation of a session in flight for every caller, a lost answer sent again with the
// same refresh token (the gateway's grace window gives the same successor), an answer that comes after
// its session ended dropped, and ahead of expiry.
import { WechatAuthError, codeOf } from './errors.js'
import { singleFlight, type Core } from './core.js'
import type { ServerErrorCode, Session, TokenPair } from './types.js'

export function createRefresh ({ o, store, events, call, keep, end, ensureLogin, logouts }: Core) {
  // One rotation in flight per session: a refresh of another session does not join it.
  const rotate = singleFlight(async (s: Session) => {
    for (let tries = 1; ; tries++) {
      try {
        // A 503 or 504 is retried: the same refresh token gets the same successor (the grace window).
        const pair = await call<TokenPair>({ url: `${o.prefix}/refresh`, method: 'POST', data: { refreshToken: s.refreshToken }, timeout: o.refreshTimeout, retry: true })
        // An answer that comes after its session ended, or while a logout ends it, must not bring it back.
        if (store.get() !== s || store.closing() === s) return
        events.emit('refreshed', keep(pair))
        return
      } catch (err) {
        // A refresh token the gateway's schema refuses can never refresh: it is as good as invalid.
        if (codeOf(err) === 'FST_ERR_VALIDATION') (err as WechatAuthError).code = 'AUTH_REFRESH_INVALID'
        if (codeOf(err) !== 'CLIENT_NETWORK' || tries >= o.refreshTries) throw err
        await o.sleep(200 * tries)
      }
    }
  })

  /**
   * Refreshes s unless another caller already replaced it; an answer that ends the session ends it
   * here, and is returned.
   */
  async function refreshFrom (s: Session): Promise<WechatAuthError | undefined> {
    if (store.get() !== s) return
    try {
      await rotate(s)
    } catch (err) {
      const code = codeOf(err) as ServerErrorCode
      const banned = code === 'AUTH_ACCOUNT_BANNED'
      if (!banned && o.reloginOn.indexOf(code) < 0) throw err
      end(s, err as WechatAuthError)
      if (banned) throw err
      return err as WechatAuthError
    }
  }

  /**
   * A session for a request: logged in, and refreshed first in the last part of the token's life; not
   * logged in again when the app logged out since `since`.
   */
  async function ready (since = logouts.n): Promise<Session> {
    const s = await ensureLogin(since)
    const now = o.now()
    if (now < s.expiresAt - (s.expiresAt - s.receivedAt) * o.refreshAhead) return s
    try {
      await refreshFrom(s)
    } catch (err) {
      // Before expiry, a refresh that failed for now (no answer, 429, 5xx) leaves the token usable.
      const status = (err as WechatAuthError).statusCode
      if (now < s.expiresAt && (status === 0 || status === 429 || status >= 500)) return s
      throw err
    }
    return await ensureLogin(since)
  }

  return { refreshFrom, ready }
}
