// POST /login, POST /refresh, POST /logout, GET /me under the configured prefix (/auth).
// Public routes are rate-limited per client IP; protected ones run fastify.authenticate.
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { RateLimitedError } from '../lib/errors.js'
import { errorHandler } from '../lib/error-handler.js'
import { rateLimitStore } from '../lib/rate-limit-store.js'
import type { FastifyRequest } from 'fastify'
import { ErrorResponse, LoginBody, LogoutBody, MeResponse, NoContent, RefreshBody, TokenPair } from '../lib/schemas.js'

// Bodies of these routes are a few dozen bytes; anything over this is refused with 413.
export const BODY_LIMIT = 4096
const errors = { '4xx': ErrorResponse, '5xx': ErrorResponse }

const authRoutes: FastifyPluginAsyncTypebox = async function authRoutes (fastify) {
  const config = fastify.wechatAuthConfig
  const sessions = fastify.wechatAuthSessions
  fastify.setErrorHandler(errorHandler)

  // An empty body with content-type: application/json (Postman, wx.request) means "no body".
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    if (text === '') done(null, null)
    else parseJson(request, text, done)
  })

  await fastify.register(rateLimit, {
    global: false,
    // Counted in the session store: shared by all gateway instances when it is Redis. If the store
    // fails, the request goes on and meets the same failure in its handler (503 STORE_UNAVAILABLE).
    store: rateLimitStore(fastify.wechatAuthStore),
    skipOnError: true,
    errorResponseBuilder: (_request, context) => Object.assign(new RateLimitedError(context.after), { statusCode: context.statusCode })
  })
  const perMinute = (max: number): { rateLimit: { max: number, timeWindow: number } } => ({ rateLimit: { max, timeWindow: 60_000 } })

  // Login budgets are per client IP and mini program, so counted once the body is parsed; an
  // appid that is not served shares the IP's budget of its default mini program.
  const appids = new Set(fastify.wechat.appids)
  const loginKey = (request: FastifyRequest): string => {
    const appid = (request.body as LoginBody | undefined)?.appid
    return `${normalizeIP(request.ip)}|${appid !== undefined && appids.has(appid) ? appid : fastify.wechat.appid}`
  }
  fastify.post('/login', {
    bodyLimit: BODY_LIMIT,
    config: { rateLimit: { ...perMinute(config.RATE_LIMIT_LOGIN_MAX).rateLimit, hook: 'preHandler', keyGenerator: loginKey } },
    schema: { body: LoginBody, response: { 200: TokenPair, ...errors } }
  }, async (request) => await sessions.login(request.body.code, request.body.appid))

  fastify.post('/refresh', {
    bodyLimit: BODY_LIMIT,
    config: perMinute(config.RATE_LIMIT_REFRESH_MAX),
    schema: { body: RefreshBody, response: { 200: TokenPair, ...errors } }
  }, async (request) => await sessions.refresh(request.body.refreshToken))

  fastify.post('/logout', {
    bodyLimit: BODY_LIMIT,
    onRequest: fastify.authenticate,
    schema: { body: LogoutBody, response: { 204: NoContent, ...errors } }
  }, async (request, reply) => {
    await sessions.logout(request.user, request.body?.allDevices === true)
    return await reply.code(204).send(null)
  })

  fastify.get('/me', {
    onRequest: fastify.authenticate,
    schema: { response: { 200: MeResponse, ...errors } }
  }, async (request) => {
    const { openid, unionid, sid, iat, exp } = request.user
    return {
      openid,
      ...(unionid !== undefined ? { unionid } : {}),
      sessionId: sid,
      issuedAt: new Date(iat * 1000).toISOString(),
      expiresAt: new Date(exp * 1000).toISOString()
    }
  })
}

export default authRoutes
