// POST /wechat/decrypt, /wechat/verify-signature and /wechat/phone under the configured prefix
// (/auth): WeChat's user-data calls, made with the caller's own session. Every route needs a valid
// access token; the session_key they use never leaves the server.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import {
  RateLimitedError, WxAccessTokenRejectedError, WxDecryptFailedError, WxPhoneCodeInvalidError, WxSessionKeyStaleError, WxSignatureInvalidError
} from '../lib/errors.js'
import { setupRouteContext } from '../http/route-context.js'
import { checkOptions, FUNCTION } from '../lib/plugin-options.js'
import {
  BearerAuth, DecryptBody, DecryptResponse, errorResponses, NoContent, NoQuery, PhoneBody, PhoneResponse, RouteErrors, Tags, VerifySignatureBody,
  type AccessClaims, type RouteError
} from '../lib/schemas.js'
import { decryptUserData, verifyUserSignature } from '../lib/wechat-crypto.js'
import type { PhoneNumber } from '../lib/wechat-client.js'

/** The host app's hook: keep the phone number WeChat confirmed for this user. */
export type OnPhoneNumber = (user: AccessClaims, phone: PhoneNumber) => Promise<void> | void

export interface WechatRoutesOptions {
  onPhoneNumber?: OnPhoneNumber
}

// wx.getWeRunData's encrypted 30 days of steps is the largest payload WeChat hands a client (a few KiB).
export const DECRYPT_BODY_LIMIT = 64 * 1024
const SMALL_BODY_LIMIT = 4096 + 16 * 1024

// What every route of this context documents: its tag, the access token, no query string, and the errors all may answer.
const documented = (summary: string, operationId: string) => ({ summary, operationId, tags: [Tags.userData], security: BearerAuth, querystring: NoQuery })
const errorsOf = (...errors: RouteError[]) => errorResponses(...RouteErrors.any, ...RouteErrors.body, ...RouteErrors.authenticated, ...errors)

const wechatRoutes: FastifyPluginAsyncTypebox<WechatRoutesOptions> = async function wechatRoutes (fastify, opts) {
  const config = fastify.wechatAuthConfig
  const sessions = fastify.wechatAuthSessions
  const wechat = fastify.wechat
  checkOptions(opts, { plugin: 'wechatAuthWechatRoutes', rules: { onPhoneNumber: FUNCTION }, encapsulated: true })
  const onPhoneNumber = opts.onPhoneNumber

  const { perMinute } = await setupRouteContext(fastify, { bodyLimit: DECRYPT_BODY_LIMIT, store: fastify.wechatAuthStore })
  // Every route of this context acts for the caller's session.
  fastify.addHook('onRequest', fastify.authenticate)

  fastify.post('/decrypt', {
    bodyLimit: DECRYPT_BODY_LIMIT,
    schema: {
      ...documented('Decrypt user data with the session\'s session_key', 'decryptUserData'),
      body: DecryptBody,
      response: { 200: DecryptResponse, ...errorsOf(WxDecryptFailedError, WxSessionKeyStaleError) }
    }
  }, async (request) => {
    const sessionKey = await sessions.sessionKeyOf(request.wechatAuthUser)
    return decryptUserData({ sessionKey, encryptedData: request.body.encryptedData, iv: request.body.iv, appid: request.wechatAuthUser.aud })
  })

  fastify.post('/verify-signature', {
    bodyLimit: SMALL_BODY_LIMIT,
    schema: {
      ...documented('Check a signature over rawData with the session\'s session_key', 'verifyUserSignature'),
      body: VerifySignatureBody,
      response: { 204: NoContent, ...errorsOf(WxSignatureInvalidError, WxSessionKeyStaleError) }
    }
  }, async (request, reply) => {
    const sessionKey = await sessions.sessionKeyOf(request.wechatAuthUser)
    if (!verifyUserSignature({ rawData: request.body.rawData, signature: request.body.signature, sessionKey })) {
      throw new WxSignatureInvalidError()
    }
    return await reply.code(204).send(null)
  })

  // Counted per user of a mini program, after authentication.
  const userKey = (request: FastifyRequest): string => `${request.wechatAuthUser?.aud ?? ''}|${request.wechatAuthUser?.sub ?? ''}`
  fastify.post('/phone', {
    bodyLimit: SMALL_BODY_LIMIT,
    config: { rateLimit: { ...perMinute(config.RATE_LIMIT_PHONE_MAX), hook: 'preHandler', keyGenerator: userKey } },
    schema: {
      ...documented('The phone number of a getPhoneNumber button\'s code', 'getPhoneNumber'),
      body: PhoneBody,
      response: { 200: PhoneResponse, ...errorsOf(RateLimitedError, WxPhoneCodeInvalidError, WxAccessTokenRejectedError, ...RouteErrors.wechat) }
    }
  }, async (request) => {
    const phone = await wechat.getPhoneNumber(request.body.code, request.wechatAuthUser.aud)
    if (onPhoneNumber !== undefined) await onPhoneNumber(request.wechatAuthUser, phone)
    return phone
  })
}

// Its own context (encapsulated), after the plugins it uses: registered without one, the boot fails naming it.
export default fp(wechatRoutes, {
  name: 'wechat-auth-wechat-routes',
  fastify: '5.x',
  encapsulate: true,
  dependencies: ['wechat-auth-config', 'wechat-auth-store', 'wechat', 'wechat-auth-jwt', 'wechat-auth-sessions']
})
