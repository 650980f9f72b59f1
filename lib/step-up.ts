// Step-up (二次认证): a session proves its user again with a fresh wx.login() code before a
// sensitive action. WeChat must name the same openid; the session's session_key is replaced by
// the fresh one (WeChat has just rotated it) and the session counts as stepped up for STEP_UP_TTL.
import { outcomeOf, type RequestContext } from './audit.js'
import type { CodeExchange } from './code-exchange.js'
import { AuthStepUpMismatchError, AuthStepUpUnavailableError, AuthTokenRevokedError, sessionEnded } from './errors.js'
import { userTag } from './ids.js'
import { sessionRules } from './login.js'
import type { AccessClaims } from './schemas.js'
import type { SessionsDeps } from './sessions-deps.js'

export function createStepUp ({ store, config, audit }: Pick<SessionsDeps, 'store' | 'config' | 'audit'>, exchange: CodeExchange) {
  const { stepUpTtlSec } = sessionRules(config)

  /**
   * Steps `user`'s session up with `code`: AUTH_STEP_UP_MISMATCH when WeChat says the code is
   * another user's (the code is spent either way), the session's own codes when it has ended,
   * AUTH_STEP_UP_UNAVAILABLE (the code unspent) for a session of H5 login.
   */
  return async function stepUp (user: AccessClaims, code: string, request?: RequestContext): Promise<{ steppedUpAt: number, expiresIn: number }> {
    const event = { event: 'step-up' as const, appid: user.aud, userId: user.sub, sessionId: user.sid }
    try {
      const result = await stepUpWith(user, code)
      audit?.({ ...event, outcome: 'ok' }, request)
      return result
    } catch (err) {
      audit?.({ ...event, outcome: outcomeOf(err) }, request)
      throw err
    }
  }

  async function stepUpWith (user: AccessClaims, code: string): Promise<{ steppedUpAt: number, expiresIn: number }> {
    const ref = { tag: userTag(user.aud, user.sub), sid: user.sid }
    // Before the code is spent: a session of H5 login (an official account's openid, no session_key)
    // would never match the mini program's openid, and exchanging the code would still rotate the
    // user's session_key in the mini program.
    const session = await store.getSession(ref)
    if (session === null) throw new AuthTokenRevokedError()
    if (session.sessionKey === '') throw Object.assign(new AuthStepUpUnavailableError(), { detail: { cause: 'no-session-key' } })
    const identity = await exchange(user.aud, code)
    if (identity.openid !== user.openid) throw new AuthStepUpMismatchError()
    const result = await store.stepUp(ref, identity.sessionKey)
    if (result === 'revoked') throw new AuthTokenRevokedError()
    if ('reason' in result) throw sessionEnded(result)
    return { steppedUpAt: result.at, expiresIn: stepUpTtlSec }
  }
}
