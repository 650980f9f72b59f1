// Decorates fastify.authenticate (an onRequest/preHandler hook that sets request.user),
// fastify.authenticateFor(appid) and fastify.wechatAuthTokens (sign/verify of the gateway's
// access tokens, lib/access-tokens.ts).
//
// Tokens are verified by fast-jwt directly, the library @fastify/jwt wraps: registering
// @fastify/jwt took a child context, a namespace and a cast to reach its verifier, and its
// request.jwtVerify() would not check revocation. Signing is ours (lib/jwt-signer.ts: the same
// bytes, a third less CPU). Only @fastify/jwt's types are used, to type request.user.
import type {} from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { createAccessTokens, type AccessTokens } from '../lib/access-tokens.js'
import { AuthWrongAppError } from '../lib/errors.js'
import type { AccessClaims } from '../lib/schemas.js'

export type { AccessTokenInput } from '../lib/access-tokens.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Record<string, unknown>
    user: AccessClaims
  }
}

type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

declare module 'fastify' {
  interface FastifyInstance {
    /** Verifies the Bearer access token (of any mini program served), checks revocation, sets request.user. */
    authenticate: Hook
    /** Like authenticate, and refuses (403 AUTH_WRONG_APP) a token of another mini program than `appid`. */
    authenticateFor: (appid: string) => Hook
    wechatAuthTokens: Pick<AccessTokens, 'sign' | 'verify'>
  }
}

export default fp(async function wechatAuthJwt (fastify) {
  const config = fastify.wechatAuthConfig
  const tokens = createAccessTokens({
    secret: config.jwtSecret,
    issuer: config.JWT_ISSUER,
    ttlSec: config.ACCESS_TOKEN_TTL,
    appids: fastify.wechat.appids,
    store: fastify.wechatAuthStore
  })
  async function authenticate (request: FastifyRequest): Promise<void> {
    request.user = await tokens.authenticate(request.headers.authorization)
  }

  if (!fastify.hasRequestDecorator('user')) fastify.decorateRequest<AccessClaims | null>('user', null)
  fastify.decorate('wechatAuthTokens', { sign: tokens.sign, verify: tokens.verify })
  fastify.decorate('authenticate', authenticate)
  fastify.decorate('authenticateFor', (appid: string): Hook => {
    fastify.wechat.appOf(appid) // a typo in the host's code fails at boot, not per request
    return async function authenticateApp (request) {
      await authenticate(request)
      if (request.user?.aud !== appid) throw new AuthWrongAppError()
    }
  })
}, { name: 'wechat-auth-jwt', fastify: '5.x', dependencies: ['wechat-auth-config', 'wechat-auth-store', 'wechat'] })
