// Decorates fastify.wechatAuthSessions: the login, refresh and logout flows, built from the
// wechat client, the session store and the token signer. Routes call these and nothing else.
import fp from 'fastify-plugin'
import { AuthRefreshInvalidError, AuthRefreshReusedError, WxCodeUsedError } from '../lib/errors.js'
import type { AccessClaims, TokenPair } from '../lib/schemas.js'
import type { NewSession } from '../lib/store/types.js'
import {
  digest, newRefreshToken, newSessionId, openSuccessor, parseRefreshToken, sealSuccessor, userTag,
  type SessionRef
} from '../lib/tokens.js'

export interface WeChatIdentity {
  openid: string
  unionid?: string
  appid: string
}

/** The host app's hook: find or create its own user; `userId` becomes the token's `sub`. */
export type ResolveUser = (identity: WeChatIdentity) => Promise<{ userId: string, claims?: Record<string, unknown> }>

export interface SessionsPluginOptions {
  resolveUser?: ResolveUser
}

declare module 'fastify' {
  interface FastifyInstance {
    wechatAuthSessions: {
      login: (code: string) => Promise<TokenPair>
      refresh: (refreshToken: string) => Promise<TokenPair>
      /** Ends the session of `user`'s token, or every session of the user. Returns how many ended. */
      logout: (user: AccessClaims, allDevices: boolean) => Promise<number>
    }
  }
}

// Claims the gateway sets itself; resolveUser may not override them.
const RESERVED_CLAIMS = new Set(['sub', 'openid', 'unionid', 'sid', 'jti', 'iat', 'exp', 'nbf', 'iss', 'aud'])
// A code is valid at WeChat for 5 minutes; remember accepted ones for longer than that.
const USED_CODE_TTL_MS = 10 * 60 * 1000

export default fp<SessionsPluginOptions>(async function sessions (fastify, opts) {
  const config = fastify.wechatAuthConfig
  const store = fastify.wechatAuthStore
  const wechat = fastify.wechat
  const tokens = fastify.wechatAuthTokens
  const appid = wechat.appid
  const resolveUser: ResolveUser = opts.resolveUser ?? (async ({ openid }) => ({ userId: openid }))
  if (typeof resolveUser !== 'function') throw new Error('resolveUser must be a function')

  function pair (session: NewSession, sid: string, refreshToken: string, refreshTtlSec: number): TokenPair {
    const access = tokens.sign({ sub: session.sub, openid: session.openid, unionid: session.unionid, sid, claims: session.claims })
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

  async function exchange (code: string): Promise<Awaited<ReturnType<typeof wechat.code2Session>>> {
    const codeId = digest(`${appid}\u0000${code}`)
    // Claimed before WeChat is called: a replay (or a concurrent duplicate) never reaches WeChat.
    const claim = await store.claimCode(codeId, config.WECHAT_TIMEOUT_MS + 5000)
    if (claim !== 'claimed') throw new WxCodeUsedError()
    try {
      const identity = await wechat.code2Session(code)
      await store.settleCode(codeId, true, USED_CODE_TTL_MS)
      return identity
    } catch (err) {
      // Forget the claim so a code whose exchange failed transiently can be tried again;
      // remember it when WeChat itself says it is used.
      if (err instanceof WxCodeUsedError) await store.settleCode(codeId, true, USED_CODE_TTL_MS).catch(() => {})
      else await store.settleCode(codeId, false, 0).catch(() => {})
      throw err
    }
  }

  async function login (code: string): Promise<TokenPair> {
    const identity = await exchange(code)
    const user = await resolveUser({ ...identity.unionid !== undefined ? { unionid: identity.unionid } : {}, openid: identity.openid, appid })
    if (typeof user?.userId !== 'string' || user.userId === '') throw new Error('resolveUser must return a non-empty string userId')
    const reserved = Object.keys(user.claims ?? {}).filter((k) => RESERVED_CLAIMS.has(k))
    if (reserved.length > 0) throw new Error(`resolveUser returned reserved claim(s): ${reserved.join(', ')}`)
    const ref: SessionRef = { tag: userTag(appid, user.userId), sid: newSessionId() }
    const session: NewSession = { sub: user.userId, openid: identity.openid, sessionKey: identity.sessionKey }
    if (identity.unionid !== undefined) session.unionid = identity.unionid
    if (user.claims !== undefined && Object.keys(user.claims).length > 0) session.claims = user.claims
    const refreshToken = newRefreshToken(ref)
    const ttl = Math.min(config.REFRESH_TOKEN_TTL, config.SESSION_MAX_AGE)
    await store.createSession(ref, session, digest(refreshToken), ttl)
    return pair(session, ref.sid, refreshToken, ttl)
  }

  async function refresh (presented: string): Promise<TokenPair> {
    const ref = parseRefreshToken(presented)
    if (ref === null) throw new AuthRefreshInvalidError()
    const successor = newRefreshToken(ref)
    const result = await store.rotateRefresh(ref, {
      presentedHash: digest(presented),
      nextHash: digest(successor),
      sealedSuccessor: sealSuccessor(presented, successor),
      graceMs: config.REFRESH_GRACE_SECONDS * 1000,
      ttlSec: config.REFRESH_TOKEN_TTL,
      maxAgeSec: config.SESSION_MAX_AGE
    })
    switch (result.status) {
      case 'invalid':
        throw new AuthRefreshInvalidError()
      case 'reused':
        fastify.log.warn({ sid: ref.sid }, 'refresh token reuse detected: session revoked')
        throw new AuthRefreshReusedError()
      case 'rotated':
        return pair(result.session, ref.sid, successor, Math.ceil(result.ttlMs / 1000))
      case 'grace': {
        // A retry of a rotation whose answer was lost: hand out the same successor again.
        const same = openSuccessor(presented, result.sealedSuccessor)
        if (same === null) throw new AuthRefreshInvalidError()
        return pair(result.session, ref.sid, same, Math.ceil(result.ttlMs / 1000))
      }
    }
  }

  async function logout (user: AccessClaims, allDevices: boolean): Promise<number> {
    const tag = userTag(user.aud, user.sub)
    // Deleting the session revokes every token issued in it; the presenting token also goes on
    // the blacklist, the per-token revocation list (see wechatAuthStore.blacklist).
    const ttl = Math.max(1, user.exp - Math.floor(Date.now() / 1000))
    if (allDevices) return await store.revokeUser(tag, user.jti, ttl)
    await store.revokeSession({ tag, sid: user.sid }, user.jti, ttl)
    return 1
  }

  fastify.decorate('wechatAuthSessions', { login, refresh, logout })
}, { name: 'wechat-auth-sessions', fastify: '5.x', dependencies: ['wechat-auth-config', 'wechat-auth-store', 'wechat', 'wechat-auth-jwt'] })
