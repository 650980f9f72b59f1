// Refreshing: a refresh token rotates once; its predecessor gets the same successor within the grace
// window, and any older token of ours is reuse, which ends the session. The request's rate limit
// (`gate`) is counted in the rotation's round trip (http/counted-with-next.ts): over the budget, the
// rotation stands but is not answered; the client's next try with the same token is taken for a lost
// answer (the 'predecessor' case below) and gets the same successor.
import { outcomeOf, type RequestContext } from './audit.js'
import { AuthRefreshInvalidError, AuthRefreshReusedError, sessionEnded } from './errors.js'
import { digest, newNonce, userTag, type SessionRef } from './ids.js'
import { alongGate, type Gate } from './rate-gate.js'
import { parseRefreshToken, type ParsedRefreshToken, type RefreshTokens } from './refresh-tokens.js'
import type { TokenPair } from './schemas.js'
import type { PairOf, SessionsDeps } from './sessions-deps.js'

/**
 * With `wanted`, reads the device type of session `ref` alongside the rotation (cookie mode answers a
 * web type's successor in the cookie, however its token came); the function waits for it. A session
 * gone since its rotation (a logout, a kick in between) has none to give: AUTH_REFRESH_INVALID, as
 * its next refresh gets. A store that could not be read: its error; the rotation stands, and the
 * client's retry with the same token gets the same successor (not yet delivered).
 */
function deviceTypeReader (store: SessionsDeps['store'], ref: SessionRef, wanted: boolean): (() => Promise<string>) | null {
  if (!wanted) return null // the hot path: no promise, no await
  const reading = store.listSessions(ref.tag)
  reading.catch(() => {}) // waited for only once the rotation is done: a failure meanwhile is not unhandled
  return async () => {
    const session = (await reading).find((s) => s.sid === ref.sid)
    if (session === undefined) throw new AuthRefreshInvalidError()
    return session.deviceType
  }
}

/** The mini program of a session: the one whose user tag the session's key carries. */
const appOfSession = (appids: readonly string[], tag: string, sub: string): string | undefined =>
  appids.find((appid) => userTag(appid, sub) === tag)

export function createRefresh ({ store, wechat, config, log, audit }: SessionsDeps, refreshTokenOf: RefreshTokens, pair: PairOf) {
  async function reused (ref: SessionRef, request?: RequestContext): Promise<never> {
    await store.revokeSession(ref)
    log.warn({ sid: ref.sid }, 'refresh token reuse detected: session revoked')
    audit?.({ event: 'refresh.reuse', outcome: 'AUTH_REFRESH_REUSED', sessionId: ref.sid }, request)
    throw new AuthRefreshReusedError()
  }

  /**
   * Rotates a refresh token: a new pair, or AUTH_REFRESH_INVALID / AUTH_REFRESH_REUSED. Audited.
   * `opts.deviceType`: the pair has the session's device type too (deviceTypeReader).
   */
  async function refresh (presented: string, gate?: Gate, request?: RequestContext, opts: { deviceType?: boolean } = {}): Promise<TokenPair & { deviceType?: string }> {
    const parsed = parseRefreshToken(presented)
    try {
      if (parsed === null) throw await alongGate(gate, Promise.resolve(new AuthRefreshInvalidError()))
      const deviceTypeOf = deviceTypeReader(store, parsed.ref, opts.deviceType === true)
      const { pair: answer, appid, sub, grace } = await rotate(presented, parsed, gate, request)
      const deviceType = deviceTypeOf === null ? undefined : await deviceTypeOf()
      audit?.({ event: 'refresh', outcome: 'ok', appid, userId: sub, sessionId: parsed.ref.sid, ...(grace ? { reason: 'grace' } : {}) }, request)
      return deviceType === undefined ? answer : { ...answer, deviceType }
    } catch (err) {
      const outcome = outcomeOf(err)
      // Reuse has its own event, written when the session was revoked.
      if (outcome !== 'AUTH_REFRESH_REUSED') audit?.({ event: 'refresh', outcome, ...(parsed !== null ? { sessionId: parsed.ref.sid } : {}) }, request)
      throw err
    }
  }

  async function rotate (presented: string, parsed: ParsedRefreshToken, gate?: Gate, request?: RequestContext): Promise<{ pair: TokenPair, appid: string, sub: string, grace: boolean }> {
    const { ref, generation } = parsed
    const nonce = newNonce()
    let successor = refreshTokenOf.successor(presented, nonce, parsed)
    const result = await alongGate(gate, store.rotateRefresh(ref, {
      generation,
      presentedHash: digest(presented),
      nextHash: digest(successor),
      nonce,
      graceMs: config.REFRESH_GRACE_SECONDS * 1000,
      ttlSec: config.REFRESH_TOKEN_TTL,
      maxAgeSec: config.SESSION_MAX_AGE
    }))
    switch (result.status) {
      case 'invalid':
        throw new AuthRefreshInvalidError()
      case 'ended':
        throw sessionEnded(result.end)
      // An older token: reuse if this gateway issued it. A forged one (anyone who saw an access
      // token knows the session id) harms nothing.
      case 'behind':
        if (!refreshTokenOf.issued(presented)) throw new AuthRefreshInvalidError()
        return await reused(ref, request)
      // The predecessor if it derives the current token with the last rotation's nonce: within the
      // grace window it gets that same token again (a retry of a lost answer). After it, too, while
      // no access token of the current generation was used: the client may never have had the
      // answer (a 503 whose write was applied, a lost response, an app suspended). Once one was
      // used, the answer was delivered and the predecessor is reuse.
      case 'predecessor':
        successor = refreshTokenOf.successor(presented, result.nonce, parsed)
        if (digest(successor) !== result.currentHash) {
          // The rotation may have been made before the JWT secret changed.
          const before = refreshTokenOf.previousSuccessor(presented, result.nonce, parsed)
          if (before === undefined || digest(before) !== result.currentHash) throw new AuthRefreshInvalidError()
          successor = before
        }
        if (!result.inGrace && result.delivered) return await reused(ref, request)
    }
    // The session's mini program; none when it was removed from the configuration since.
    const appid = appOfSession(wechat.appids, ref.tag, result.session.sub)
    if (appid === undefined) {
      await store.revokeSession(ref)
      throw new AuthRefreshInvalidError()
    }
    // The access token names the successor's generation: its first use marks the rotation delivered.
    // Whole seconds rounded down: neither token is said to, or does, outlive the session.
    return { pair: pair(appid, result.session, ref.sid, successor, Math.max(1, Math.floor(result.ttlMs / 1000)), generation + 1), appid, sub: result.session.sub, grace: result.status === 'predecessor' }
  }

  return refresh
}
