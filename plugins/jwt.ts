// Decorates fastify.authenticate (an onRequest/preHandler hook that sets request.user) and
// fastify.wechatAuthTokens (sign/verify of access tokens). HS256 only, iss and aud checked.
import fastifyJwt, { type JWT } from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import {
  AuthTokenExpiredError, AuthTokenInvalidError, AuthTokenMissingError, AuthTokenRevokedError, AuthWrongAppError
} from '../lib/errors.js'
import type { AccessClaims } from '../lib/schemas.js'
import { createHs256Signer } from '../lib/jwt-signer.js'
import { newJti, userTag } from '../lib/ids.js'

/** What the gateway puts in an access token besides iat/exp/iss/aud/jti. */
export interface AccessTokenInput {
  /** The mini program's appid: the token's audience. */
  aud: string
  sub: string
  openid: string
  unionid?: string
  sid: string
  claims?: Record<string, unknown>
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Record<string, unknown>
    user: AccessClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Verifies the Bearer access token (of any mini program served), checks revocation, sets request.user. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** Like authenticate, and refuses (403 AUTH_WRONG_APP) a token of another mini program than `appid`. */
    authenticateFor: (appid: string) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    wechatAuthTokens: {
      sign: (input: AccessTokenInput) => { token: string, jti: string, expiresIn: number }
      /** Verifies signature, algorithm, iss, aud and expiry; throws AUTH_TOKEN_* errors. */
      verify: (token: string) => AccessClaims
    }
  }
}

const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+) *$/i
// Our tokens are well under 1 KiB; a longer one is not ours, and is refused before any work.
const MAX_TOKEN_LENGTH = 4096
function deepFreeze (value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return
  Object.freeze(value)
  for (const v of Object.values(value)) deepFreeze(v)
}

const JWT_NAMESPACE = 'wechatAuth'
const VERIFY_CACHE_SIZE = 10_000
const STRING_CLAIMS = ['sub', 'openid', 'sid', 'jti', 'aud'] as const

export default fp(async function wechatAuthJwt (fastify) {
  const config = fastify.wechatAuthConfig
  const store = fastify.wechatAuthStore
  const appids = fastify.wechat.appids

  // @fastify/jwt goes into a child context, under a namespace and with its own request decorator
  // name, so that it cannot clash with a host app that uses @fastify/jwt (or anything else that
  // decorates request.user) for its own purposes. We keep only its verifier; tokens are signed by
  // lib/jwt-signer.ts (same bytes, a third less CPU).
  let jwt: JWT | undefined
  await fastify.register(async function jwtScope (child) {
    await child.register(fastifyJwt, {
      namespace: JWT_NAMESPACE,
      decoratorName: 'wechatAuthJwtUser',
      secret: config.jwtSecret,
      verify: {
        algorithms: ['HS256'],
        allowedIss: config.JWT_ISSUER,
        allowedAud: [...appids],
        // fast-jwt skips allowedIss/allowedAud for a token without the claim: require them.
        requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp', 'iss', 'aud']
      }
    })
    jwt = (child.jwt as unknown as Record<string, JWT>)[JWT_NAMESPACE]
  })
  if (jwt === undefined) throw new Error('@fastify/jwt did not register')
  const verifier = jwt
  // aud is the session's mini program: set per token, in the payload.
  const signToken = createHs256Signer({ secret: config.jwtSecret, iss: config.JWT_ISSUER, ttlSec: config.ACCESS_TOKEN_TTL })

  function sign (input: AccessTokenInput): { token: string, jti: string, expiresIn: number } {
    const jti = newJti()
    const payload: Record<string, unknown> = { ...input.claims, sub: input.sub, openid: input.openid, sid: input.sid, jti, aud: input.aud }
    if (input.unionid !== undefined) payload.unionid = input.unionid
    return { token: signToken(payload), jti, expiresIn: config.ACCESS_TOKEN_TTL }
  }

  // Clients present the same token for its whole life, so verified tokens are remembered until
  // they expire. Only successes are kept (fast-jwt's own cache also stores failures: keyed on the
  // token, junk tokens would fill it with attacker data; keyed on a hash, hashing costs ~20% of
  // throughput), so every entry is a token this gateway signed. Oldest entries go first.
  const verified = new Map<string, Readonly<Record<string, unknown>>>()

  /** Verified claims: a fresh copy per call (the remembered object is shared, and deep-frozen). */
  function verify (token: string): AccessClaims {
    let claims = verified.get(token)
    if (claims === undefined) {
      if (token.length > MAX_TOKEN_LENGTH) throw new AuthTokenInvalidError()
      let fresh: Record<string, unknown>
      try {
        fresh = verifier.verify<Record<string, unknown>>(token)
      } catch (err) {
        throw (err as { code?: string }).code === 'FAST_JWT_EXPIRED' ? new AuthTokenExpiredError() : new AuthTokenInvalidError()
      }
      if (STRING_CLAIMS.some((k) => typeof fresh[k] !== 'string')) throw new AuthTokenInvalidError()
      deepFreeze(fresh)
      if (verified.size >= VERIFY_CACHE_SIZE) verified.delete(verified.keys().next().value as string)
      verified.set(token, fresh)
      claims = fresh
    } else if ((claims.exp as number) * 1000 <= Date.now()) {
      verified.delete(token)
      throw new AuthTokenExpiredError()
    }
    // A host that writes to request.user must not change what the next request sees (its sid, say).
    return { ...claims } as AccessClaims
  }

  async function authenticate (request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization
    if (header === undefined || header === '') throw new AuthTokenMissingError()
    const match = BEARER.exec(header)
    if (match === null) throw new AuthTokenInvalidError()
    const claims = verify(match[1] as string)
    const status = await store.checkAccess({ tag: userTag(claims.aud, claims.sub), sid: claims.sid }, claims.jti)
    if (status !== 'ok') throw new AuthTokenRevokedError()
    request.user = claims
  }

  if (!fastify.hasRequestDecorator('user')) fastify.decorateRequest<AccessClaims | null>('user', null)
  fastify.decorate('wechatAuthTokens', { sign, verify })
  fastify.decorate('authenticate', authenticate)
  fastify.decorate('authenticateFor', (appid: string) => {
    fastify.wechat.appOf(appid) // a typo in the host's code fails at boot, not per request
    return async function authenticateApp (request: FastifyRequest): Promise<void> {
      await authenticate(request)
      if (request.user?.aud !== appid) throw new AuthWrongAppError()
    }
  })
}, { name: 'wechat-auth-jwt', fastify: '5.x', dependencies: ['wechat-auth-config', 'wechat-auth-store', 'wechat'] })
