// Decorates fastify.authenticate (an onRequest/preHandler hook that sets request.wechatAuthUser),
// fastify.authenticateFor(appid) and fastify.wechatAuthTokens (sign/verify of the gateway's
// access tokens, lib/access-tokens.ts).
//
// The claims go on their own request property, not request.user: that one belongs to the host
// (its own @fastify/jwt, passport...), whose type for it would clash with ours (TS2717).
// Tokens are verified by fast-jwt directly, the library @fastify/jwt wraps: registering
// @fastify/jwt took a child context, a namespace and a cast to reach its verifier, and its
// request.jwtVerify() would not check revocation. Signing is ours (lib/jwt-signer.ts: the same
// bytes, a third less CPU).
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { createAccessTokens, type AccessTokens, type AuthUser } from '../lib/access-tokens.js'
import { AuthWrongAppError } from '../lib/errors.js'
import { checkOptions } from '../lib/plugin-options.js'

export type { AccessTokenInput, AuthUser } from '../lib/access-tokens.js'

type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The verified claims of the request's access token, with the user's roles, permissions and
     * service bans and the session's last step-up as the store holds them now; set by
     * fastify.authenticate (null on a route that does not run it). Each request gets its own copy.
     */
    wechatAuthUser: AuthUser
  }
  interface FastifyInstance {
    /** Verifies the Bearer access token (of any mini program served), checks revocation, sets request.wechatAuthUser. */
    authenticate: Hook
    /** Like authenticate, and refuses (403 AUTH_WRONG_APP) a token of another mini program than `appid`. */
    authenticateFor: (appid: string) => Hook
    /** Signs and verifies the gateway's access tokens; publicKeys() is the JWKS (ES256/EdDSA; empty with HS256). */
    wechatAuthTokens: Pick<AccessTokens, 'sign' | 'verify' | 'publicKeys'>
  }
}

export default fp(async function wechatAuthJwt (fastify, opts) {
  checkOptions(opts, { plugin: 'wechatAuthJwt', rules: {}, encapsulated: false })
  const config = fastify.wechatAuthConfig
  const tokens = createAccessTokens({
    secret: config.jwtSecret,
    issuer: config.JWT_ISSUER,
    ttlSec: config.ACCESS_TOKEN_TTL,
    appids: fastify.wechat.appids,
    store: fastify.wechatAuthStore,
    ...(config.signing !== undefined ? { signing: config.signing } : {})
  })
  // Not an async function awaiting tokens.authenticate: that added a promise and a turn of the
  // microtask queue to every authenticated request.
  const authenticate = (request: FastifyRequest): Promise<void> =>
    tokens.authenticate(request.headers.authorization).then((user) => { request.wechatAuthUser = user })

  fastify.decorateRequest<AuthUser | null>('wechatAuthUser', null)
  fastify.decorate('wechatAuthTokens', { sign: tokens.sign, verify: tokens.verify, publicKeys: tokens.publicKeys })
  fastify.decorate('authenticate', authenticate)
  fastify.decorate('authenticateFor', (appid: string): Hook => {
    fastify.wechat.appOf(appid) // a typo in the host's code fails at boot, not per request
    return async function authenticateApp (request) {
      await authenticate(request)
      if (request.wechatAuthUser?.aud !== appid) throw new AuthWrongAppError()
    }
  })
}, { name: 'wechat-auth-jwt', fastify: '5.x', dependencies: ['wechat-auth-config', 'wechat-auth-store', 'wechat'] })
