// POST /login, POST /refresh, POST /logout under the configured prefix (/auth), and the routes of
// routes/sessions.ts (GET /me, the caller's sessions), routes/step-up.ts, routes/tickets.ts,
// routes/qr.ts (web QR login), routes/h5.ts (H5 login) and routes/verify.ts (forward auth) in the
// same context. In cookie mode (REFRESH_COOKIE) a web device type's refresh token is a cookie
// (lib/web-cookies.ts) in every answer that opens or refreshes its session.
// Public routes are rate-limited per client IP (login per IP and mini program); protected ones run
// fastify.authenticate.
import { parse as parseCookies, serialize as serializeCookie } from 'cookie'
import { clientKey } from '../http/client-key.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Gate } from '../lib/rate-gate.js'
import type { Sessions } from '../lib/sessions.js'
import type { LoginDevice } from '../lib/sessions-deps.js'
import { gated } from '../http/counted-with-next.js'
import { requestContext, setupRouteContext } from '../http/route-context.js'
import sessionRoutes from './sessions.js'
import stepUpRoutes from './step-up.js'
import ticketRoutes from './tickets.js'
import qrRoutes from './qr.js'
import h5Routes from './h5.js'
import verifyRoutes from './verify.js'
import {
  AuthAccountBannedError, AuthCsrfRejectedError, AuthDeviceInUseError, AuthDeviceTypeUnknownError, AuthRefreshInvalidError, AuthRefreshMissingError,
  AuthRefreshReusedError, AuthSessionKickedError, AuthSessionReplacedError, RateLimitedError,
  StoreUnavailableError, WxAppUnknownError, WxCodeInvalidError, WxCodeUsedError, WxUserBlockedError
} from '../lib/errors.js'
import {
  BearerAuth, CookieRefreshBody, errorResponses, LoginBody, LogoutBody, NoContent, NoQuery, RefreshBody, RouteErrors as shared, Tags, TokenPair, WebTokenPair
} from '../lib/schemas.js'
import { createWebCookies, type TokenAnswer, type WebCookies } from '../lib/web-cookies.js'
import { checkOptions } from '../lib/plugin-options.js'

// Bodies of these routes are a few dozen bytes; anything over this is refused with 413.
export const BODY_LIMIT = 4096

const authRoutes: FastifyPluginAsyncTypebox = async function authRoutes (fastify, opts) {
  checkOptions(opts, { plugin: 'wechatAuthRoutes', rules: {}, encapsulated: true })
  const { wechatAuthConfig: config, wechatAuthSessions: sessions } = fastify
  const { perMinute, counted } = await setupRouteContext(fastify, { bodyLimit: BODY_LIMIT, store: fastify.wechatAuthStore })
  const cookies = webCookiesOf(fastify)
  const tokenAnswer = cookies.cookieMode ? WebTokenPair : TokenPair // no refresh token for a web client

  const loginKey = loginKeyOf(fastify)
  // Counted with the code's claim, or by the host's @fastify/rate-limit when it has one.
  const loginLimit = counted?.('/login', config.RATE_LIMIT_LOGIN_MAX, loginKey)
  fastify.post('/login', {
    bodyLimit: BODY_LIMIT,
    config: loginLimit !== undefined ? {} : { rateLimit: { ...perMinute(config.RATE_LIMIT_LOGIN_MAX), hook: 'preHandler', keyGenerator: loginKey } },
    schema: {
      summary: 'Log in with a wx.login() code',
      tags: [Tags.sessions],
      operationId: 'login',
      querystring: NoQuery,
      body: LoginBody,
      response: {
        200: tokenAnswer,
        ...errorResponses(...shared.any, ...shared.body, RateLimitedError, StoreUnavailableError, WxAppUnknownError, AuthDeviceTypeUnknownError,
          AuthDeviceInUseError, AuthAccountBannedError, WxCodeInvalidError, WxCodeUsedError, WxUserBlockedError, ...shared.wechat)
      }
    }
  }, async (request, reply) => {
    const gate = loginLimit?.(request, reply)
    return cookies.opened(request, reply, await gated(gate, sessions.login(request.body.code, request.body.appid, loginDevice(request.body, request), gate)))
  })

  // Counted with the rotation, or by the host's @fastify/rate-limit.
  const refreshLimit = counted?.('/refresh', config.RATE_LIMIT_REFRESH_MAX)
  fastify.post('/refresh', {
    bodyLimit: BODY_LIMIT,
    config: refreshLimit !== undefined ? {} : { rateLimit: perMinute(config.RATE_LIMIT_REFRESH_MAX) },
    schema: {
      summary: 'Trade the refresh token for a new pair',
      description: 'In cookie mode (REFRESH_COOKIE) a web page sends no body: its refresh token is the HttpOnly cookie, with the X-WeChat-Auth-CSRF: 1 header, and the successor goes back in the cookie. The session\'s device type decides, not the request: a web type\'s successor is never in the body, even when its token came in one.',
      tags: [Tags.sessions],
      operationId: 'refresh',
      querystring: NoQuery,
      body: cookies.cookieMode ? CookieRefreshBody : RefreshBody,
      response: {
        200: tokenAnswer,
        ...errorResponses(...shared.any, ...shared.body, RateLimitedError, StoreUnavailableError, AuthRefreshInvalidError, AuthRefreshReusedError, AuthSessionReplacedError,
          AuthSessionKickedError, AuthAccountBannedError, AuthRefreshMissingError, AuthCsrfRejectedError)
      }
    }
  }, async (request, reply) => {
    const gate = refreshLimit?.(request, reply)
    const token = request.body?.refreshToken
    return token !== undefined ? await refreshFromBody(sessions, cookies, token, request, reply, gate) : await gated(gate, refreshFromCookie(sessions, cookies, request, reply, gate))
  })

  fastify.post('/logout', {
    bodyLimit: BODY_LIMIT,
    onRequest: fastify.authenticate,
    schema: {
      summary: 'End this session, or all of the user\'s',
      tags: [Tags.sessions],
      operationId: 'logout',
      security: BearerAuth,
      querystring: NoQuery,
      body: LogoutBody,
      response: { 204: NoContent, ...errorResponses(...shared.any, ...shared.body, ...shared.authenticated) }
    }
  }, async (request, reply) => {
    await sessions.logout(request.wechatAuthUser, request.body?.allDevices === true, requestContext(request))
    if (cookies.cookieMode) cookies.clearRefresh(request, reply)
    return await reply.code(204).send(null)
  })

  // GET /me, GET /sessions, DELETE /sessions/:sid: in this context (its error handler and prefix).
  await fastify.register(sessionRoutes, { cookies })
  await fastify.register(stepUpRoutes, { perMinute })
  await fastify.register(ticketRoutes, { perMinute, cookies })
  await fastify.register(qrRoutes, { perMinute, cookies })
  await fastify.register(h5Routes, { perMinute, cookies })
  await fastify.register(verifyRoutes)
}

/**
 * Cookies for web clients (lib/web-cookies.ts): parsed where they are read, not on every request, and
 * written with the `cookie` package's functions, not through @fastify/cookie (a host's registration of
 * it would lend its options); for the routes where this context is mounted, the host's prefix included.
 */
function webCookiesOf (fastify: FastifyInstance): WebCookies {
  return createWebCookies(fastify.wechatAuthConfig, { parse: parseCookies, serialize: serializeCookie }, fastify.prefix)
}

/**
 * Login budgets are per client IP and mini program, so counted once the body is parsed; an appid
 * that is not served shares the IP's budget of its default mini program.
 */
function loginKeyOf (fastify: FastifyInstance): (request: FastifyRequest) => string {
  const appids = new Set(fastify.wechat.appids)
  return (request) => {
    const appid = (request.body as LoginBody | undefined)?.appid
    // A client that reset its connection has no address left: its (unanswerable) request still gets a key.
    return `${clientKey(request.ip)}|${appid !== undefined && appids.has(appid) ? appid : fastify.wechat.appid}`
  }
}

/** What a login request says of its device (lib/login.ts). */
function loginDevice ({ deviceType, deviceName }: LoginBody, request: FastifyRequest): LoginDevice {
  return { deviceType, deviceName, ip: request.ip, userAgent: request.headers['user-agent'], request: requestContext(request) }
}

/**
 * A refresh with the token in the body. In cookie mode the session's device type decides where the
 * successor goes, not the request: a web type's into the cookie, never into the body (its token sent
 * in the body: one issued before cookie mode was on, or a page asking differently); others' into the body.
 */
async function refreshFromBody (sessions: Sessions, cookies: WebCookies, token: string, request: FastifyRequest, reply: FastifyReply, gate?: Gate): Promise<TokenAnswer> {
  if (!cookies.cookieMode) return await gated(gate, sessions.refresh(token, gate, requestContext(request)))
  return cookies.refreshedFromBody(request, reply, await gated(gate, sessions.refresh(token, gate, requestContext(request), { deviceType: true })))
}

/** Cookie mode, a web page's refresh: from the cookie, back into the cookie; a dead token's cookie is cleared. */
async function refreshFromCookie (sessions: Sessions, cookies: WebCookies, request: FastifyRequest, reply: FastifyReply, gate?: Gate): Promise<TokenAnswer> {
  const token = cookies.refreshToken(request)
  try {
    return cookies.refreshed(request, reply, await sessions.refresh(token, gate, requestContext(request)))
  } catch (err) {
    if (String((err as { code?: unknown }).code).startsWith('AUTH_')) cookies.clearRefresh(request, reply)
    throw err
  }
}

// Its own context (encapsulated: its error handler, parsers and prefix), after what it uses: registered
// without one of them, the boot fails naming it.
export default fp(authRoutes, {
  name: 'wechat-auth-routes',
  fastify: '5.x',
  encapsulate: true,
  dependencies: ['wechat-auth-config', 'wechat-auth-store', 'wechat', 'wechat-auth-jwt', 'wechat-auth-sessions']
})
