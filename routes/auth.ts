// POST /login, POST /refresh, POST /logout under the configured prefix (/auth), and the routes of
// routes/sessions.ts (GET /me, the caller's sessions), routes/step-up.ts, routes/tickets.ts,
// routes/qr.ts (web QR login) and routes/verify.ts (forward auth) in the same context.
// Public routes are rate-limited per client IP (login per IP and mini program); protected ones run
// fastify.authenticate.
import { normalizeIP } from '@fastify/rate-limit'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { setupRouteContext } from '../http/route-context.js'
import sessionRoutes from './sessions.js'
import stepUpRoutes from './step-up.js'
import ticketRoutes from './tickets.js'
import qrRoutes from './qr.js'
import verifyRoutes from './verify.js'
import {
  AuthAccountBannedError, AuthDeviceInUseError, AuthDeviceTypeUnknownError, AuthRefreshInvalidError, AuthRefreshReusedError, AuthSessionKickedError,
  AuthSessionReplacedError, RateLimitedError,
  StoreUnavailableError, WxAppUnknownError, WxCodeInvalidError, WxCodeUsedError, WxUserBlockedError
} from '../lib/errors.js'
import {
  BearerAuth, errorResponses, LoginBody, LogoutBody, NoContent, RefreshBody, RouteErrors as shared, Tags, TokenPair
} from '../lib/schemas.js'

// Bodies of these routes are a few dozen bytes; anything over this is refused with 413.
export const BODY_LIMIT = 4096

const authRoutes: FastifyPluginAsyncTypebox = async function authRoutes (fastify) {
  const config = fastify.wechatAuthConfig
  const sessions = fastify.wechatAuthSessions
  const { perMinute } = await setupRouteContext(fastify, { bodyLimit: BODY_LIMIT, store: fastify.wechatAuthStore })

  // Login budgets are per client IP and mini program, so counted once the body is parsed; an
  // appid that is not served shares the IP's budget of its default mini program.
  const appids = new Set(fastify.wechat.appids)
  const loginKey = (request: FastifyRequest): string => {
    const appid = (request.body as LoginBody | undefined)?.appid
    // A client that reset its connection has no address left: its (unanswerable) request still gets a key.
    return `${normalizeIP(request.ip ?? '')}|${appid !== undefined && appids.has(appid) ? appid : fastify.wechat.appid}`
  }
  fastify.post('/login', {
    bodyLimit: BODY_LIMIT,
    config: { rateLimit: { ...perMinute(config.RATE_LIMIT_LOGIN_MAX), hook: 'preHandler', keyGenerator: loginKey } },
    schema: {
      summary: 'Log in with a wx.login() code',
      tags: [Tags.sessions],
      operationId: 'login',
      body: LoginBody,
      response: {
        200: TokenPair,
        ...errorResponses(...shared.any, ...shared.body, RateLimitedError, StoreUnavailableError, WxAppUnknownError, AuthDeviceTypeUnknownError,
          AuthDeviceInUseError, AuthAccountBannedError, WxCodeInvalidError, WxCodeUsedError, WxUserBlockedError, ...shared.wechat)
      }
    }
  }, async (request) => await sessions.login(request.body.code, request.body.appid, {
    deviceType: request.body.deviceType,
    deviceName: request.body.deviceName,
    ip: request.ip,
    userAgent: request.headers['user-agent']
  }))

  fastify.post('/refresh', {
    bodyLimit: BODY_LIMIT,
    config: { rateLimit: perMinute(config.RATE_LIMIT_REFRESH_MAX) },
    schema: {
      summary: 'Trade the refresh token for a new pair',
      tags: [Tags.sessions],
      operationId: 'refresh',
      body: RefreshBody,
      response: {
        200: TokenPair,
        ...errorResponses(...shared.any, ...shared.body, RateLimitedError, StoreUnavailableError, AuthRefreshInvalidError, AuthRefreshReusedError, AuthSessionReplacedError,
          AuthSessionKickedError, AuthAccountBannedError)
      }
    }
  }, async (request) => await sessions.refresh(request.body.refreshToken))

  fastify.post('/logout', {
    bodyLimit: BODY_LIMIT,
    onRequest: fastify.authenticate,
    schema: {
      summary: 'End this session, or all of the user\'s',
      tags: [Tags.sessions],
      operationId: 'logout',
      security: BearerAuth,
      body: LogoutBody,
      response: { 204: NoContent, ...errorResponses(...shared.any, ...shared.body, ...shared.authenticated) }
    }
  }, async (request, reply) => {
    await sessions.logout(request.wechatAuthUser, request.body?.allDevices === true)
    return await reply.code(204).send(null)
  })

  // GET /me, GET /sessions, DELETE /sessions/:sid: in this context (its error handler and prefix).
  await fastify.register(sessionRoutes)
  await fastify.register(stepUpRoutes, { perMinute })
  await fastify.register(ticketRoutes, { perMinute })
  await fastify.register(qrRoutes, { perMinute })
  await fastify.register(verifyRoutes)
}

export default authRoutes
