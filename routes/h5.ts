// H5 login for pages opened inside WeChat (lib/h5-login.ts): GET /h5/authorize sends the browser to
// WeChat's authorize page with a state and sets this browser's H5 cookie; WeChat sends it back to
// the page (returnTo) with code and state in its address, and the page posts them to POST /h5/login
// for a token pair of a new `h5` session. Only when H5 login is on (WECHAT_OA_APPID, or the development
// simulator). Registered by routes/auth.ts inside its context (prefix, error handler, rate limit).
import { clientKey } from '../http/client-key.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { requestContext, type PerMinute } from '../http/route-context.js'
import {
  AuthAccountBannedError, AuthCsrfRejectedError, AuthDeviceInUseError, AuthDeviceTypeUnknownError, AuthH5CodeMissingError, AuthH5ReturnToRefusedError, AuthH5StateExpiredError,
  AuthH5StateInvalidError, AuthH5StateMissingError, AuthH5StateOtherBrowserError, AuthH5StateUsedError, RateLimitedError, StoreUnavailableError,
  WxAppUnknownError, WxOauthCodeInvalidError, WxOauthCodeUsedError, WxUserBlockedError
} from '../lib/errors.js'
import {
  errorResponses, H5AuthorizeQuery, H5LoginBody, H5Redirect, NoQuery, RouteErrors as shared, Tags, TokenPair, WebTokenPair
} from '../lib/schemas.js'
import type { WebCookies } from '../lib/web-cookies.js'

const h5Routes: FastifyPluginAsyncTypebox<{ perMinute: PerMinute, cookies: WebCookies }> = async function h5Routes (fastify, { perMinute, cookies }) {
  const { h5 } = fastify.wechatAuthSessions
  if (h5 === undefined) return
  const config = fastify.wechatAuthConfig
  const perIp = (name: string) => ({ ...perMinute(config.RATE_LIMIT_LOGIN_MAX), groupId: `h5-${name}`, keyGenerator: (request: { ip?: string }) => `h5-${name}|${clientKey(request.ip)}` })
  // GET and the HEAD Fastify adds for it (curl -I): one budget, so one limiter on both (as the QR
  // polls'), in the gateway's store (its groupId) and in a host's @fastify/rate-limit alike.
  const authorizeLimit = fastify.rateLimit(perIp('authorize'))

  fastify.get('/h5/authorize', {
    onRequest: authorizeLimit,
    config: { rateLimit: false },
    schema: {
      summary: 'Start an H5 login: to WeChat\'s authorize page (a page opened inside WeChat)',
      description: 'Navigate the browser here (not fetch): 302 to WeChat with a state, and an HttpOnly cookie that binds the state to this browser. ' +
        'WeChat sends the browser back to returnTo with code and state; the page posts them to POST /h5/login.',
      tags: [Tags.sessions],
      operationId: 'h5Authorize',
      querystring: H5AuthorizeQuery,
      response: {
        302: H5Redirect,
        ...errorResponses(...shared.any, RateLimitedError, StoreUnavailableError, AuthH5ReturnToRefusedError, WxAppUnknownError, AuthDeviceTypeUnknownError)
      }
    }
  }, async (request, reply) => {
    const { url, browserSecret, maxAge } = h5.authorize(request.query)
    cookies.setBrowserSecret(request, reply, browserSecret, maxAge)
    return await reply.header('cache-control', 'no-store').redirect(url, 302)
  })

  fastify.post('/h5/login', {
    config: { rateLimit: perIp('login') },
    schema: {
      summary: 'Finish an H5 login: the code and state WeChat gave the page, for a token pair of a new `h5` session',
      description: 'Same browser as GET /h5/authorize (its cookie). With REFRESH_COOKIE naming h5, the refresh token is a cookie, not in the answer.',
      tags: [Tags.sessions],
      operationId: 'h5Login',
      querystring: NoQuery,
      body: H5LoginBody,
      response: {
        200: cookies.cookieMode ? WebTokenPair : TokenPair,
        ...errorResponses(...shared.any, ...shared.body, RateLimitedError, StoreUnavailableError, AuthH5StateMissingError, AuthH5StateInvalidError, AuthH5StateExpiredError,
          AuthH5StateOtherBrowserError, AuthH5StateUsedError, AuthH5CodeMissingError, WxOauthCodeInvalidError, WxOauthCodeUsedError, WxUserBlockedError, WxAppUnknownError,
          AuthDeviceTypeUnknownError, AuthDeviceInUseError, AuthAccountBannedError, AuthCsrfRejectedError, ...shared.wechat)
      }
    }
  }, async (request, reply) => {
    const browserSecret = cookies.browserSecret(request)
    try {
      const pair = await h5.login(request.body ?? {}, browserSecret, { deviceName: request.body?.deviceName, ip: request.ip, userAgent: request.headers['user-agent'], request: requestContext(request) })
      cookies.clearBrowserSecret(request, reply)
      return cookies.opened(request, reply, pair)
    } catch (err) {
      // A state is good for one try, so its cookie is done with, but for the store failing: the state
      // may not be claimed yet, and the retry with it works (or is told AUTH_H5_STATE_USED).
      if ((err as { code?: unknown }).code !== 'STORE_UNAVAILABLE') cookies.clearBrowserSecret(request, reply)
      throw err
    }
  })
}

export default h5Routes
