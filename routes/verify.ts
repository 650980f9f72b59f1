// GET /verify: forward authentication for a proxy in front of other services (nginx auth_request,
// Traefik ForwardAuth; not Envoy's ext_authz, which sends the guarded request's own method and path:
// docs/operations.md). It authenticates the Bearer token exactly as fastify.authenticate does
// (revocation, session-control reasons, bans) and checks what the query string asks (roles,
// permissions, appid, service, step-up); 200 names the caller in headers of both common conventions,
// 401/403 answer the gateway's JSON error with WWW-Authenticate.
// Registered by routes/auth.ts inside its context (prefix, error handler).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuthUser } from '../lib/access-tokens.js'
import { loggedPath } from '../http/logged-url.js'
import { AuthForbiddenError, AuthStepUpRequiredError, AuthWrongAppError } from '../lib/errors.js'
import { remember } from '../lib/bounded-memo.js'
import { LONE_SURROGATE } from '../lib/login.js'
import { requirementCheck, type Requirement } from '../lib/permissions.js'
import { errorResponses, RouteErrors as shared, Tags, VerifyQuery, VerifyResponse, BearerAuth } from '../lib/schemas.js'

// A header value as is when it is printable ASCII without '%' or spaces, percent-encoded otherwise:
// one decoding gives the user id back, and two ids never give the same header (a plain value holds no
// '%', so no id reads as another's encoding; a space at either end would be stripped in transit).
const headerValue = (v: string): string => /^[\x21-\x24\x26-\x7e]*$/.test(v) ? v : encodeURIComponent(v.replace(new RegExp(LONE_SURROGATE, 'g'), '\uFFFD'))
// Names, from a repeated key or commas. An empty name is refused, never skipped: `?role=` from an unset
// proxy variable must not let every caller through.
const list = (v: string | string[] | undefined): string[] | undefined =>
  v === undefined ? undefined : (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(','))

/** The caller's identity, as oauth2-proxy (X-Auth-Request-*) and Authelia (Remote-*) name it. */
function identityHeaders (reply: FastifyReply, user: AuthUser): void {
  const roles = user.roles.join(',')
  reply.headers({
    'x-auth-request-user': headerValue(user.sub),
    'remote-user': headerValue(user.sub),
    'x-auth-request-groups': roles,
    'remote-groups': roles,
    'x-auth-request-permissions': user.permissions.join(','),
    // As WeChat gives them (28 or 29 characters of base64url) when the token is the gateway's: encoded
    // all the same, as a header value must never break the answer (a 500 from Node's header check).
    'x-auth-request-openid': headerValue(user.openid),
    'x-auth-request-appid': user.aud,
    'x-auth-request-session': user.sid,
    ...(user.unionid !== undefined ? { 'x-auth-request-unionid': headerValue(user.unionid) } : {}),
    'cache-control': 'no-store'
  })
}

/**
 * The WWW-Authenticate error of a refusal (RFC 6750 3.1, RFC 9470 3): behind nginx, which passes the
 * challenge but not the body, it is all the client learns. invalid_token only when the token is good
 * for nothing any more (an account ban ends its sessions); a step-up or a ban from one service leaves
 * it good for the rest.
 */
function challengeError (code: string, detail: { maxAgeSeconds?: string, service?: string } = {}): string {
  if (code === 'AUTH_TOKEN_MISSING') return ''
  if (code === 'AUTH_STEP_UP_REQUIRED') {
    const maxAge = Number(detail.maxAgeSeconds)
    return `, error="insufficient_user_authentication"${Number.isSafeInteger(maxAge) ? `, max_age="${maxAge}"` : ''}`
  }
  if (code === 'AUTH_FORBIDDEN' || code === 'AUTH_WRONG_APP' || (code === 'AUTH_ACCOUNT_BANNED' && detail.service !== undefined)) return ', error="insufficient_scope"'
  return ', error="invalid_token"'
}

// pino says whether a level is written (custom levels included); another logger is asked to write it.
const debugOn = (request: FastifyRequest): boolean => (request.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('debug') ?? true

const FIRST_SEGMENT = /^\/?(?:(?!%2f)[^/?;#])*/i

/** What the proxy asked about, for the debug log: the method and path only (a query may hold secrets). */
function logRefusal (request: FastifyRequest, code: string): void {
  const method = String(request.headers['x-forwarded-method'] ?? '')
  request.log.debug({
    forwardedMethod: /^[A-Z]{1,10}$/.test(method) ? method : undefined,
    // The first path segment only (another service's path may hold a secret of no shape the gateway
    // knows), with or without its leading slash, up to a slash encoded or not; redacted as the
    // request log's when token-shaped, then cut.
    forwardedUri: loggedPath(FIRST_SEGMENT.exec(String(request.headers['x-forwarded-uri'] ?? ''))?.[0] ?? '').slice(0, 64),
    code
  }, 'forward auth refused')
}

const verifyRoutes: FastifyPluginAsyncTypebox = async function verifyRoutes (fastify) {
  const ttl = fastify.wechatAuthConfig.STEP_UP_TTL
  // One check per distinct query string (a proxy sends the same few), built and validated once.
  const checks = new Map<string, ((u: AuthUser) => void) | null>()
  const checkOf = (q: VerifyQuery, raw: string): ((u: AuthUser) => void) | null => {
    let check = checks.get(raw)
    if (check === undefined) {
      const requirement: Requirement = {}
      const roles = list(q.role)
      const permissions = list(q.permission)
      if (roles !== undefined) requirement.roles = roles
      if (permissions !== undefined) requirement.permissions = permissions
      if (q.mode !== undefined) requirement.mode = q.mode
      if (q.service !== undefined) requirement.service = q.service
      if (q.stepUp !== undefined) requirement.stepUp = Number(q.stepUp)
      try {
        check = Object.keys(requirement).length === 0 || (Object.keys(requirement).length === 1 && q.mode !== undefined) ? null : requirementCheck(requirement, ttl)
      } catch (err) {
        throw Object.assign(new Error(`querystring: ${(err as Error).message.replace(/^authorize: /, '')}`), { statusCode: 400, code: 'FST_ERR_VALIDATION', validation: [] })
      }
      remember(checks, raw, check, 256)
    }
    return check
  }

  fastify.get('/verify', {
    schema: {
      summary: 'Forward authentication for a proxy (nginx auth_request, Traefik ForwardAuth)',
      description: 'Authenticates the Bearer token as every protected route does; the query string may ask for roles, permissions, a mini program, a service without a ban, a recent step-up. 200 names the caller in X-Auth-Request-* and Remote-* headers.',
      tags: [Tags.sessions],
      operationId: 'verify',
      security: BearerAuth,
      querystring: VerifyQuery,
      response: { 200: VerifyResponse, ...errorResponses(...shared.any, ...shared.authenticated, AuthForbiddenError, AuthStepUpRequiredError, AuthWrongAppError) }
    }
  }, async (request, reply) => {
    const raw = request.url.slice(request.url.indexOf('?') + 1)
    const check = request.url.includes('?') ? checkOf(request.query, raw) : null
    try {
      await fastify.authenticate(request, reply)
      const user = request.wechatAuthUser
      if (request.query.appid !== undefined && user.aud !== request.query.appid) throw new AuthWrongAppError()
      check?.(user)
      identityHeaders(reply, user)
      return { sub: user.sub, openid: user.openid, appid: user.aud, sessionId: user.sid, roles: [...user.roles], permissions: [...user.permissions] }
    } catch (err) {
      const { code = '', statusCode = 500, detail } = err as { code?: string, statusCode?: number, detail?: { maxAgeSeconds?: string, service?: string } }
      // A challenge on refusals of the token only: on a 503 (Redis down) a proxy would pass on
      // error="invalid_token", and a client would drop a good token over an outage (RFC 6750 3.1).
      if (statusCode === 401 || statusCode === 403) reply.header('www-authenticate', `Bearer realm="wechat-auth"${challengeError(code, detail)}`)
      reply.header('cache-control', 'no-store')
      if (debugOn(request)) logRefusal(request, code) // built only when it is written: refusals are frequent
      throw err
    }
  })
}

export default verifyRoutes
