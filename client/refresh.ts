// Refreshing: one rotation in flight for every caller, a lost answer sent again with the same refresh
// token (the gateway's grace window gives the same successor), and ahead of expiry.
import { WechatAuthError, codeOf } from './errors.js'
import { singleFlight, type Core } from './core.js'
import type { ServerErrorCode, Session, TokenPair } from './types.js'

export function createRefresh ({ o, store, events, call, keep, end, ensureLogin }: Core) {
  const rotate = singleFlight(async () => {
    const s = store.get() as Session
    for (let tries = 1; ; tries++) {
      try {
        const pair = await call<TokenPair>({ url: `${o.prefix}/refresh`, method: 'POST', data: { refreshToken: s.refreshToken }, timeout: o.refreshTimeout })
        const next = keep(pair)
        events.emit('refreshed', next)
        return next
      } catch (err) {
        if (codeOf(err) !== 'CLIENT_NETWORK' || tries >= o.refreshTries) throw err
        await o.sleep(200 * tries)
      }
    }
  })

  /** Refreshes s unless another caller already replaced it; an answer that ends the session ends it here. */
  async function refreshFrom (s: Session): Promise<void> {
    if (store.get() !== s) return
    try {
      await rotate()
    } catch (err) {
      const code = codeOf(err) as ServerErrorCode
      const banned = code === 'AUTH_ACCOUNT_BANNED'
      if (!banned && o.reloginOn.indexOf(code) < 0) throw err
      end(s, err as WechatAuthError)
      if (banned) throw err
    }
  }

  /** A session for a request: logged in, and refreshed first in the last part of the token's life. */
  async function ready (): Promise<Session> {
    const s = await ensureLogin()
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
    return await ensureLogin()
  }

  return { refreshFrom, ready }
}
