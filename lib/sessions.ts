// The login, refresh and logout flows, built from WeChat's code2Session, the session store and the
// access-token signer. No Fastify: the sessions plugin decorates what this builds, the benchmark
// and the tests call it directly.
import type { AccessTokens } from './access-tokens.js'
import type { ResolvedConfig } from './config.js'
import { AuthRefreshInvalidError, AuthRefreshReusedError, AuthTokenRevokedError, WxCodeUsedError } from './errors.js'
import { digest, newNonce, newSessionId, userTag, type SessionRef } from './ids.js'
import type { Logger } from './logger.js'
import { parseRefreshToken, refreshTokens } from './refresh-tokens.js'
import type { AccessClaims, TokenPair } from './schemas.js'
import type { LoginCodeStore, NewSession, SessionsStore, TokenSubject } from './store/types.js'
import type { Code2SessionResult } from './wechat-client.js'

export interface WeChatIdentity {
  openid: string
  unionid?: string
  appid: string
}

/** The host app's hook: find or create its own user; `userId` becomes the token's `sub`. */
export type ResolveUser = (identity: WeChatIdentity) => Promise<{ userId: string, claims?: Record<string, unknown> }>

export interface SessionsDeps {
  store: LoginCodeStore & Omit<SessionsStore, 'checkAccess' | 'blacklist'>
  /** WeChat, as much of it as logging in needs (fastify.wechat has this shape). */
  wechat: {
    readonly appids: readonly string[]
    appOf: (appid?: string) => string
    code2Session: (code: string, appid?: string) => Promise<Code2SessionResult>
  }
  tokens: Pick<AccessTokens, 'sign'>
  config: Pick<ResolvedConfig, 'jwtSecret' | 'JWT_SECRET_PREVIOUS' | 'REFRESH_TOKEN_TTL' | 'SESSION_MAX_AGE' | 'REFRESH_GRACE_SECONDS'>
  /** The openid becomes the user id when none is given. */
  resolveUser?: ResolveUser
  log: Pick<Logger, 'warn'>
}

// Claims the gateway sets itself; resolveUser may not override them.
const RESERVED_CLAIMS = new Set(['sub', 'openid', 'unionid', 'sid', 'jti', 'iat', 'exp', 'nbf', 'iss', 'aud'])
// A code is valid at WeChat for 5 minutes; remember accepted ones for longer than that.
export const USED_CODE_TTL_MS = 10 * 60 * 1000
// A userId becomes `sub` and is stored in a packed record: printable, bounded.
// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const CONTROL_CHAR = /[\u0000-\u001f\u007f]/
const isUserId = (id: unknown): id is string =>
  typeof id === 'string' && id.length > 0 && id.length <= 256 && !CONTROL_CHAR.test(id)

export function createSessions (deps: SessionsDeps) {
  const { store, wechat, tokens, config, log } = deps
  const refreshTokenOf = refreshTokens(config.jwtSecret, config.JWT_SECRET_PREVIOUS)
  const resolveUser: ResolveUser = deps.resolveUser ?? (async ({ openid }) => ({ userId: openid }))
  if (typeof resolveUser !== 'function') throw new Error('resolveUser must be a function')

  /** The mini program of a session: the one whose user tag the session's key carries. */
  const appOfSession = (tag: string, sub: string): string | undefined =>
    wechat.appids.find((appid) => userTag(appid, sub) === tag)

  function pair (appid: string, session: TokenSubject, sid: string, refreshToken: string, refreshTtlSec: number): TokenPair {
    const access = tokens.sign({ aud: appid, sub: session.sub, openid: session.openid, unionid: session.unionid, sid, claims: session.claims })
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

  /**
   * Exchanges a code with WeChat. A code is claimed in the store before WeChat is called, so a
   * replay (or a concurrent duplicate) never reaches WeChat. The claim is made for as long as an
   * accepted code is remembered, so a successful exchange writes nothing more (one store command
   * less per login); a gateway that dies mid-exchange leaves its code claimed, and the client calls
   * wx.login() again, as after any failed login.
   */
  async function exchange (appid: string, code: string): Promise<Code2SessionResult> {
    const codeId = digest(`${appid}\u0000${code}`)
    const claim = await store.claimCode(codeId, USED_CODE_TTL_MS)
    if (claim !== 'claimed') throw new WxCodeUsedError()
    try {
      return await wechat.code2Session(code, appid)
    } catch (err) {
      // Forget the claim so a code whose exchange failed transiently can be tried again;
      // remember it when WeChat itself says it is used.
      await store.settleCode(codeId, err instanceof WxCodeUsedError, USED_CODE_TTL_MS).catch(() => {})
      throw err
    }
  }

  /** Logs in with a wx.login() code. `appid` may be omitted when one mini program is served. */
  async function login (code: string, requestedAppid?: string): Promise<TokenPair> {
    const appid = wechat.appOf(requestedAppid)
    const identity = await exchange(appid, code) // from here on the code stays claimed: WeChat accepted it
    const user = await resolveUser({ ...identity.unionid !== undefined ? { unionid: identity.unionid } : {}, openid: identity.openid, appid })
    if (!isUserId(user?.userId)) throw new Error('resolveUser must return a userId of 1 to 256 printable characters')
    const reserved = user.claims === undefined ? [] : Object.keys(user.claims).filter((k) => RESERVED_CLAIMS.has(k))
    if (reserved.length > 0) throw new Error(`resolveUser returned reserved claim(s): ${reserved.join(', ')}`)
    const ref: SessionRef = { tag: userTag(appid, user.userId), sid: newSessionId() }
    const session: NewSession = { sub: user.userId, openid: identity.openid, sessionKey: identity.sessionKey }
    if (identity.unionid !== undefined) session.unionid = identity.unionid
    if (user.claims !== undefined && Object.keys(user.claims).length > 0) session.claims = user.claims
    const refreshToken = refreshTokenOf.first(ref)
    const ttl = Math.min(config.REFRESH_TOKEN_TTL, config.SESSION_MAX_AGE)
    await store.createSession(ref, session, digest(refreshToken), ttl)
    return pair(appid, session, ref.sid, refreshToken, ttl)
  }

  async function reused (ref: SessionRef): Promise<never> {
    await store.revokeSession(ref)
    log.warn({ sid: ref.sid }, 'refresh token reuse detected: session revoked')
    throw new AuthRefreshReusedError()
  }

  /** Rotates a refresh token: a new pair, or AUTH_REFRESH_INVALID / AUTH_REFRESH_REUSED. */
  async function refresh (presented: string): Promise<TokenPair> {
    const parsed = parseRefreshToken(presented)
    if (parsed === null) throw new AuthRefreshInvalidError()
    const { ref, generation } = parsed
    const nonce = newNonce()
    let successor = refreshTokenOf.successor(presented, nonce)
    const result = await store.rotateRefresh(ref, {
      generation,
      presentedHash: digest(presented),
      nextHash: digest(successor),
      nonce,
      graceMs: config.REFRESH_GRACE_SECONDS * 1000,
      ttlSec: config.REFRESH_TOKEN_TTL,
      maxAgeSec: config.SESSION_MAX_AGE
    })
    switch (result.status) {
      case 'invalid':
        throw new AuthRefreshInvalidError()
      // An older token: reuse if this gateway issued it. A forged one (anyone who saw an access
      // token knows the session id) harms nothing.
      case 'behind':
        if (!refreshTokenOf.issued(presented)) throw new AuthRefreshInvalidError()
        return await reused(ref)
      // The predecessor if it derives the current token with the last rotation's nonce: within the
      // grace window it gets that same token again (a retry of a lost answer), after it is reuse.
      case 'predecessor':
        successor = refreshTokenOf.successor(presented, result.nonce)
        if (digest(successor) !== result.currentHash) {
          // The rotation may have been made before the JWT secret changed.
          const before = refreshTokenOf.previousSuccessor(presented, result.nonce)
          if (before === undefined || digest(before) !== result.currentHash) throw new AuthRefreshInvalidError()
          successor = before
        }
        if (!result.inGrace) return await reused(ref)
    }
    // The session's mini program; none when it was removed from the configuration since.
    const appid = appOfSession(ref.tag, result.session.sub)
    if (appid === undefined) {
      await store.revokeSession(ref)
      throw new AuthRefreshInvalidError()
    }
    return pair(appid, result.session, ref.sid, successor, Math.ceil(result.ttlMs / 1000))
  }

  /**
   * Ends the session of `user`'s token, or every session of the user; returns how many ended.
   * Ending a session revokes every access token issued in it, on every instance, at once.
   */
  async function logout (user: AccessClaims, allDevices: boolean): Promise<number> {
    const tag = userTag(user.aud, user.sub)
    if (allDevices) return await store.revokeUser(tag)
    await store.revokeSession({ tag, sid: user.sid })
    return 1
  }

  /** The WeChat session_key of `user`'s session (AUTH_TOKEN_REVOKED once it ended). Server side only. */
  async function sessionKeyOf (user: AccessClaims): Promise<string> {
    const session = await store.getSession({ tag: userTag(user.aud, user.sub), sid: user.sid })
    if (session === null) throw new AuthTokenRevokedError()
    return session.sessionKey
  }

  return { login, refresh, logout, sessionKeyOf }
}

export type Sessions = ReturnType<typeof createSessions>
