// The login, refresh and logout flows, built from WeChat's code2Session (and an official account's
// web authorization, for H5 login), the session store and the access-token signer. No Fastify: the sessions plugin decorates what this builds, the benchmark
// and the tests call it directly.
import type { RequestContext } from './audit.js'
import { createCodeExchange } from './code-exchange.js'
import { AuthSessionNotFoundError, AuthTokenRevokedError, WxSessionKeyStaleError } from './errors.js'
import { createH5Login, type H5Deps } from './h5-login.js'
import { userTag } from './ids.js'
import { createIdentityLogin, createLogin } from './login.js'
import { createModeration } from './moderation.js'
import { createQrLogin } from './qr-login.js'
import { createRefresh } from './refresh.js'
import { refreshTokens } from './refresh-tokens.js'
import { createSessionOpener } from './session-opener.js'
import { createStepUp } from './step-up.js'
import { createTickets } from './tickets.js'
import type { AccessClaims, TokenPair } from './schemas.js'
import type { PairOf, ResolveUser, SessionsDeps } from './sessions-deps.js'
import type { HandoffStore, SessionInfo } from './store/types.js'

export type { PairOf, ResolveUser, SessionsDeps, WeChatIdentity } from './sessions-deps.js'
export { USED_CODE_TTL_MS } from './code-exchange.js'

/**
 * `deps.store` also keeps one-time tickets and QR logins. With `deps.h5` (an official account's web
 * authorization and the pages it may return to), H5 login is on.
 */
export function createSessions (deps: SessionsDeps & { store: HandoffStore, h5?: Pick<H5Deps, 'oauth' | 'returnUrls'> }) {
  const { store, tokens } = deps
  const refreshTokenOf = refreshTokens(deps.config.jwtSecret, deps.config.JWT_SECRET_PREVIOUS)
  const resolveUser: ResolveUser = deps.resolveUser ?? (async ({ openid }) => ({ userId: openid }))
  if (typeof resolveUser !== 'function') throw new Error('resolveUser must be a function')

  const pair: PairOf = (appid, session, sid, refreshToken, refreshTtlSec, generation) => {
    // The access token expires at the latest with the refresh token: with the session, at SESSION_MAX_AGE.
    const access = tokens.sign({ aud: appid, sub: session.sub, openid: session.openid, unionid: session.unionid, sid, generation, claims: session.claims }, refreshTtlSec)
    const out: TokenPair = {
      accessToken: access.token,
      tokenType: 'Bearer',
      expiresIn: access.expiresIn,
      refreshToken,
      refreshExpiresIn: refreshTtlSec,
      openid: session.openid
    }
    if (session.unionid !== undefined) out.unionid = session.unionid
    return out
  }

  const exchange = createCodeExchange(deps)
  const opener = createSessionOpener(deps, refreshTokenOf, pair)
  const openFor = createIdentityLogin(deps, resolveUser, opener)
  const login = createLogin(deps, openFor, exchange, opener)
  const h5 = deps.h5 === undefined ? undefined : createH5Login({ ...deps, ...deps.h5 }, openFor, opener)
  const tickets = createTickets(deps, opener)
  const qr = createQrLogin(deps, opener)
  const stepUp = createStepUp(deps, exchange)
  const refresh = createRefresh(deps, refreshTokenOf, pair)

  /**
   * Ends the session of `user`'s token, or every session of the user; returns how many ended.
   * Ending a session revokes every access token issued in it, on every instance, at once.
   */
  async function logout (user: AccessClaims, allDevices: boolean, request?: RequestContext): Promise<number> {
    const tag = userTag(user.aud, user.sub)
    const ended = allDevices ? await store.revokeUser(tag) : await store.revokeSession({ tag, sid: user.sid }).then(() => 1)
    deps.audit?.({ event: 'logout', outcome: 'ok', appid: user.aud, userId: user.sub, sessionId: user.sid, reason: allDevices ? `all devices, ended ${ended}` : 'this device' }, request)
    return ended
  }

  /**
   * The WeChat session_key of `user`'s session (AUTH_TOKEN_REVOKED once it ended). Server side only.
   * A session opened by H5 login has none (an official account gives none): WX_SESSION_KEY_STALE,
   * detail.cause `no-session-key`; the mini program's own session has one.
   */
  async function sessionKeyOf (user: AccessClaims): Promise<string> {
    const session = await store.getSession({ tag: userTag(user.aud, user.sub), sid: user.sid })
    if (session === null) throw new AuthTokenRevokedError()
    if (session.sessionKey === '') throw Object.assign(new WxSessionKeyStaleError(), { detail: { cause: 'no-session-key' } })
    return session.sessionKey
  }

  /**
   * The caller's live sessions, the current one marked; never a secret. A caller whose own session is
   * not among them had it ended after its token was checked (a logout, a kick, a refresh token's reuse
   * racing this request): AUTH_TOKEN_REVOKED, as its next request would be told, not a list without it.
   */
  async function listSessions (user: AccessClaims): Promise<Array<SessionInfo & { current: boolean }>> {
    const list = await store.listSessions(userTag(user.aud, user.sub))
    if (!list.some((s) => s.sid === user.sid)) throw new AuthTokenRevokedError()
    return list.map((s) => ({ ...s, current: s.sid === user.sid }))
  }

  /** Ends one of the caller's own sessions (AUTH_SESSION_NOT_FOUND for any other id). */
  async function endSession (user: AccessClaims, sid: string, request?: RequestContext): Promise<void> {
    const tag = userTag(user.aud, user.sub)
    if (!(await store.listSessions(tag)).some((s) => s.sid === sid)) throw new AuthSessionNotFoundError()
    await store.revokeSession({ tag, sid })
    deps.audit?.({ event: 'logout', outcome: 'ok', appid: user.aud, userId: user.sub, sessionId: sid, reason: `signed out from session ${user.sid}` }, request)
  }

  return { login, refresh, logout, stepUp, sessionKeyOf, listSessions, endSession, tickets, qr, h5, ...createModeration(deps) }
}

export type Sessions = ReturnType<typeof createSessions>
export type { UserName } from './moderation.js'
