// Web QR login confirmed in the mini program (lib/qr-login.ts): the web page makes one (POST /qr),
// shows its code (GET /qr/:id/image, routes/qr-image.ts), follows its state (GET /qr/:id, or the event stream of
// routes/qr-events.ts) and collects once with its secret (POST /qr/:id/token); the mini program
// scans, confirms or cancels (Bearer). Registered by routes/auth.ts inside its context.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { clientKey } from '../http/client-key.js'
import { requestContext, type PerMinute } from '../http/route-context.js'
import type { WebCookies } from '../lib/web-cookies.js'
import type { PerIp } from './qr-image.js'
import {
  AuthAccountBannedError, AuthDeviceInUseError, AuthDeviceTypeUnknownError, AuthHandoffRefusedError, AuthQrCollectedError, AuthQrExpiredError, AuthQrNotFoundError, AuthQrOtherUserError,
  AuthQrSecretInvalidError, AuthQrSessionEndedError, AuthQrStateError, AuthWrongAppError, RateLimitedError, StoreUnavailableError, WxAppUnknownError
} from '../lib/errors.js'
import {
  BearerAuth, errorResponses, NoBody, NoQuery, QrCollectBody, QrCreateBody, QrCreated, QrParams, QrScanned, QrStatus, RouteErrors as shared, Tags, TokenPair, WebTokenPair
} from '../lib/schemas.js'
import qrEventRoutes from './qr-events.js'
import qrImageRoutes from './qr-image.js'

const qrRoutes: FastifyPluginAsyncTypebox<{ perMinute: PerMinute, cookies: WebCookies }> = async function qrRoutes (fastify, { perMinute, cookies }) {
  const { qr } = fastify.wechatAuthSessions
  const config = fastify.wechatAuthConfig
  const perIp: PerIp = (name, max) => ({ ...perMinute(max), groupId: `qr-${name}`, keyGenerator: (request) => `qr-${name}|${clientKey(request.ip)}` })
  // GET /qr/:id and GET /qr/:id/events: one budget (RATE_LIMIT_QR_POLL_MAX), so one limiter on both. By
  // route config, a host's @fastify/rate-limit would keep one counter per route whatever the groupId.
  const pollLimit = fastify.rateLimit(perIp('poll', config.RATE_LIMIT_QR_POLL_MAX))
  const lookups = [...shared.params, AuthQrNotFoundError, StoreUnavailableError]
  const steps = [...shared.any, ...shared.body, ...shared.params, ...shared.authenticated, AuthQrNotFoundError, AuthQrExpiredError, AuthQrOtherUserError, AuthQrStateError, AuthWrongAppError,
    AuthHandoffRefusedError]

  fastify.post('/qr', {
    config: { rateLimit: perIp('create', config.RATE_LIMIT_LOGIN_MAX) },
    schema: {
      summary: 'Start a web QR login (the web page)',
      description: 'Keep `secret` in this browser: only it collects the tokens. Show the code of GET /qr/{id}/image.',
      tags: [Tags.sessions],
      operationId: 'createQrLogin',
      querystring: NoQuery,
      body: QrCreateBody,
      response: { 200: QrCreated, ...errorResponses(...shared.any, ...shared.body, RateLimitedError, StoreUnavailableError, WxAppUnknownError, AuthDeviceTypeUnknownError) }
    }
  }, async (request) => await qr.create({ ip: request.ip, userAgent: request.headers['user-agent'] }, request.body?.appid))

  fastify.get('/qr/:id', {
    onRequest: pollLimit,
    config: { rateLimit: false },
    schema: {
      summary: 'The state of a web QR login (polling)',
      tags: [Tags.sessions],
      operationId: 'qrLoginStatus',
      params: QrParams,
      querystring: NoQuery,
      response: { 200: QrStatus, ...errorResponses(...shared.any, RateLimitedError, ...lookups) }
    }
  }, async (request) => await qr.status(request.params.id))

  const stepRoute = (name: 'scan' | 'confirm' | 'cancel', summary: string) => ({
    onRequest: fastify.authenticate,
    schema: {
      summary,
      tags: [Tags.sessions],
      operationId: `${name}QrLogin`,
      security: BearerAuth,
      params: QrParams,
      querystring: NoQuery,
      body: NoBody,
      response: { 200: name === 'scan' ? QrScanned : QrStatus, ...errorResponses(...steps) }
    }
  })
  fastify.post('/qr/:id/scan', stepRoute('scan', 'Scan a web QR login (the mini program): what is asking, for the confirmation screen'),
    async (request) => await qr.scan(request.wechatAuthUser, request.params.id))
  fastify.post('/qr/:id/confirm', stepRoute('confirm', 'Confirm a scanned web QR login (the user who scanned)'),
    async (request) => await qr.confirm(request.wechatAuthUser, request.params.id))
  fastify.post('/qr/:id/cancel', stepRoute('cancel', 'Cancel a scanned web QR login (the user who scanned)'),
    async (request) => await qr.cancel(request.wechatAuthUser, request.params.id))

  fastify.post('/qr/:id/token', {
    config: { rateLimit: perIp('token', config.RATE_LIMIT_LOGIN_MAX) },
    schema: {
      summary: 'Collect the token pair of a confirmed web QR login, once, with its secret (the web page)',
      tags: [Tags.sessions],
      operationId: 'collectQrLogin',
      params: QrParams,
      querystring: NoQuery,
      body: QrCollectBody,
      response: {
        200: cookies.cookieMode ? WebTokenPair : TokenPair,
        ...errorResponses(...shared.any, ...shared.body, RateLimitedError, ...lookups, AuthQrExpiredError, AuthQrStateError, AuthQrSecretInvalidError, AuthQrCollectedError,
          AuthQrSessionEndedError, AuthDeviceInUseError, AuthAccountBannedError)
      }
    }
  }, async (request, reply) => cookies.opened(request, reply,
    await qr.collect(request.params.id, request.body.secret, { deviceName: request.body.deviceName, ip: request.ip, userAgent: request.headers['user-agent'], request: requestContext(request) })))

  await fastify.register(qrEventRoutes, { pollLimit })
  await fastify.register(qrImageRoutes, { perIp })
}

export default qrRoutes
