// The admin API: what an operator does to a user through the host API (fastify.wechatAuthSessions),
// over HTTP. List a user's sessions, end them (kick), ban and unban, set roles and permissions.
// Everything is under /admin, behind a bearer ADMIN_TOKEN, with its own OpenAPI document at
// GET /admin/openapi.json. The standalone server serves it on a listener of its own (server.ts); a host
// registers it where only operators reach it. Never answers a session_key or a token.
import { createHash, timingSafeEqual } from 'node:crypto'
import AjvCompiler from '@fastify/ajv-compiler'
import swagger, { type SwaggerTransform } from '@fastify/swagger'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { errorCodes, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { errorHandler, notFoundHandler } from '../http/error-handler.js'
import { holdsJwtOrRefreshToken, holdsSecret } from '../http/logged-url.js'
import { markOptionalBodies, type Document } from '../http/openapi-document.js'
import { STRICT_AJV } from '../http/server-options.js'
import { requestContext } from '../http/route-context.js'
import { AdminTokenInvalidError, ConfigError, ServiceBansFullError, StoreUnavailableError, UserNotFoundError, WxAppUnknownError } from '../lib/errors.js'
import {
  ADMIN_TOKEN_RULE, adminTokenProblem, AccessBody, BanBody, ByOpenid, BySub, errorResponses, KickBody, KickResponse, NoBody, NoContent, NoQuery, OpenApiParts, RouteErrors as shared, UnbanQuery, UserStateResponse, type RouteError
} from '../lib/schemas.js'
import { BAN_END_RULE, banEndAllowed, LATEST_UNTIL } from '../lib/moderation.js'
import type { Sessions, UserName } from '../lib/sessions.js'

export interface AdminOptions {
  /** The host API the routes act through: `fastify.wechatAuthSessions`. */
  sessions: Pick<Sessions, 'kick' | 'ban' | 'unban' | 'setAccess' | 'userState'>
  /** The bearer token operators send: at least 32 characters, 10 of them distinct. */
  token: string
}

// The largest body is PUT access: 32 roles and 64 permissions of 64 characters.
const BODY_LIMIT = 8192
const TAG = 'wechat-auth: admin'
const SECURITY = [{ adminToken: [] }]

// ---- Options and the token ----

function checkOptions (opts: Partial<AdminOptions>): AdminOptions {
  const { sessions, token } = opts
  const api = ['kick', 'ban', 'unban', 'setAccess', 'userState'] as const
  if (typeof sessions !== 'object' || sessions === null || api.some((name) => typeof sessions[name] !== 'function')) {
    throw new ConfigError('the admin API\'s sessions option must be the host API, fastify.wechatAuthSessions')
  }
  if (typeof token !== 'string') throw new ConfigError(`the admin API's token option must be ${ADMIN_TOKEN_RULE}`)
  const problem = adminTokenProblem(token)
  if (problem !== undefined) throw new ConfigError(`the admin API's token option ${problem}`)
  return { sessions, token }
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

/** The first field (`body/reason`, `body/roles/0`) whose string holds `secret`, as sent or percent-decoded. */
function fieldHolding (secret: string, value: unknown, at = ''): string | undefined {
  if (typeof value === 'string') return holdsSecret(value, secret) ? at : undefined
  if (typeof value !== 'object' || value === null) return undefined
  for (const [key, inner] of Object.entries(value)) {
    const found = fieldHolding(secret, inner, at === '' ? key : `${at}/${key}`)
    if (found !== undefined) return found
  }
  return undefined
}

/** Refuses a request without `Authorization: Bearer <token>`, comparing digests in constant time. */
function requireToken (token: string) {
  const expected = digest(token)
  return async function adminToken (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const given = /^Bearer +([\x21-\x7e]+) *$/i.exec(request.headers.authorization ?? '')?.[1] ?? ''
    if (timingSafeEqual(digest(given), expected)) return
    reply.header('www-authenticate', 'Bearer realm="wechat-auth-admin"')
    throw new AdminTokenInvalidError()
  }
}

// ---- Routes ----

// At most RFC 3339's last time: a ban stored before the admin API refused later ends would otherwise
// be a six-digit year, which the answer's date-time schema refuses (a 500 for the user's state).
const iso = (ms: number | null): string | null => ms === null ? null : new Date(Math.min(ms, LATEST_UNTIL)).toISOString()
const ban = <T extends { until: number | null }>(b: T): Omit<T, 'until'> & { until: string | null } => ({ ...b, until: iso(b.until) })

/** A user's state as answered: times in ISO 8601, sessions as their user sees them (no `current`). */
async function stateOf (sessions: AdminOptions['sessions'], user: UserName) {
  const state = await sessions.userState(user)
  return {
    appid: state.appid,
    sub: state.sub,
    roles: state.roles,
    permissions: state.permissions,
    ban: state.ban === null ? null : ban(state.ban),
    serviceBans: state.serviceBans.map(ban),
    sessions: state.sessions.map(({ sid, deviceType, deviceName, ip, userAgent, createdAt, lastRefreshAt, expiresAt }) => ({
      sessionId: sid, deviceType, deviceName, ip, userAgent, createdAt: iso(createdAt), lastRefreshAt: iso(lastRefreshAt), expiresAt: iso(expiresAt)
    }))
  }
}

const refusals: RouteError[] = [...shared.any, ...shared.params, AdminTokenInvalidError, WxAppUnknownError, UserNotFoundError, StoreUnavailableError]

/** The five routes for users named one way: by user id (`users/:sub`) or by openid (`openids/:openid`). */
function userRoutes (fastify: FastifyInstance, sessions: AdminOptions['sessions'], by: 'sub' | 'openid'): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const path = by === 'sub' ? '/apps/:appid/users/:sub' : '/apps/:appid/openids/:openid'
  const params = by === 'sub' ? BySub : ByOpenid
  const named = by === 'sub' ? 'by user id' : 'by openid'
  const id = (name: string): string => by === 'sub' ? name : `${name}ByOpenid`
  // No query string unless the route says otherwise (unban's service).
  const schema = (summary: string, operationId: string, response: object, ...errors: RouteError[]) => ({
    summary: `${summary} (${named})`, tags: [TAG], operationId: id(operationId), security: SECURITY, params, querystring: NoQuery, response: { ...response, ...errorResponses(...refusals, ...errors) }
  })
  const user = (p: Record<string, string>): UserName => {
    // A token pasted where the user id or openid goes (a JWT, a refresh token; the admin token: below)
    // would be written into the admin log lines and audit events (the request log redacts it):
    // refused, it names no user anyway.
    if (holdsJwtOrRefreshToken(p[by] as string)) throw new errorCodes.FST_ERR_VALIDATION(`params/${by} is a token, not a user id`)
    return by === 'sub' ? { appid: p.appid as string, sub: p.sub as string } : { appid: p.appid as string, openid: p.openid as string }
  }

  app.get(path, { schema: schema('A user\'s roles, permissions, bans and live sessions', 'adminUserState', { 200: UserStateResponse }) },
    async (request) => await stateOf(sessions, user(request.params)))

  app.post(`${path}/kick`, { schema: { ...schema('End one or all of a user\'s sessions (kick)', 'adminKick', { 200: KickResponse }, ...shared.body), body: KickBody } },
    async (request) => {
      const ended = await sessions.kick(user(request.params), { sid: request.body?.sessionId, reason: request.body?.reason, request: requestContext(request) })
      request.log.info({ admin: 'kick', ...request.params, sessionId: request.body?.sessionId, reason: request.body?.reason, ended }, 'admin: sessions ended')
      return { ended }
    })

  app.put(`${path}/ban`, { schema: { ...schema('Ban a user, or from one service', 'adminBan', { 204: NoContent }, ...shared.body, ServiceBansFullError), body: BanBody } },
    async (request, reply) => {
      const { reason, until, service } = request.body
      // The schema says date-time; only here can "in the future" (and RFC 3339's last year) be said, with the same code.
      if (until !== undefined && !banEndAllowed(Date.parse(until))) throw new errorCodes.FST_ERR_VALIDATION(`body/${BAN_END_RULE}`)
      await sessions.ban(user(request.params), { reason, until, service, request: requestContext(request) })
      request.log.info({ admin: 'ban', ...request.params, reason, until, service }, 'admin: user banned')
      return await reply.code(204).send(null)
    })

  app.delete(`${path}/ban`, { schema: { ...schema('Lift a user\'s ban, or the ban from one service', 'adminUnban', { 204: NoContent }, ...shared.body), querystring: UnbanQuery, body: NoBody } },
    async (request, reply) => {
      await sessions.unban(user(request.params), { service: request.query.service, request: requestContext(request) })
      request.log.info({ admin: 'unban', ...request.params, service: request.query.service }, 'admin: ban lifted')
      return await reply.code(204).send(null)
    })

  app.put(`${path}/access`, { schema: { ...schema('Replace a user\'s roles and permissions', 'adminSetAccess', { 204: NoContent }, ...shared.body), body: AccessBody } },
    async (request, reply) => {
      await sessions.setAccess(user(request.params), request.body, requestContext(request))
      request.log.info({ admin: 'access', ...request.params, ...request.body }, 'admin: roles and permissions set')
      return await reply.code(204).send(null)
    })
}

const TITLE = 'fastify-wechat-auth admin API'
const onlyInAdminDocument: SwaggerTransform = ({ schema, url, ...arg }) =>
  ({ schema: 'openapiObject' in arg && arg.openapiObject.info?.title === TITLE ? schema : { ...schema, hide: true }, url })

const adminRoutes: FastifyPluginAsyncTypebox<AdminOptions> = async function wechatAuthAdmin (fastify, opts) {
  const { sessions, token } = checkOptions(opts)
  await fastify.register(async function admin (context) {
    context.setErrorHandler(errorHandler)
    context.setNotFoundHandler(notFoundHandler)
    // Strict validation whatever the host's Ajv options: with Fastify's defaults (removeAdditional) a
    // misspelt field was dropped, and the call ran wider than asked ({ "sesionId" } kicked every
    // session, { "servise" } banned the whole account).
    context.setValidatorCompiler(AjvCompiler()({}, { customOptions: { ...STRICT_AJV }, plugins: [] }))
    // JSON only (text/plain gets 415); an empty JSON body counts as none, as on the gateway's routes.
    context.removeContentTypeParser('text/plain')
    const parseJson = context.getDefaultJsonParser('error', 'error')
    context.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (request, body, done) => {
      if (body === '') done(null, null)
      else parseJson(request, body as string, done)
    })
    // A user's IPs and devices: kept by no cache, refusals included.
    context.addHook('onRequest', async (request, reply) => { reply.header('cache-control', 'no-store') })
    context.addHook('onRequest', requireToken(token))
    // The admin token pasted into a field (a user id, a reason, a role) would reach the admin log
    // lines and audit events: refused, whatever the field's pattern lets through.
    context.addHook('preValidation', async (request) => {
      const field = fieldHolding(token, { params: request.params, querystring: request.query, body: request.body })
      if (field !== undefined) throw new errorCodes.FST_ERR_VALIDATION(`${field} holds the admin token`)
    })
    await context.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: TITLE, version: '1', description: 'Kick, ban, roles and permissions. Bearer ADMIN_TOKEN; errors are `{ statusCode, code, error, message }`: match on `code`.' },
        tags: [{ name: TAG, description: 'What an operator does to a user' }],
        components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' } }, responses: OpenApiParts.responses as Record<string, { description: string }> }
      },
      decorator: 'wechatAuthAdminOpenapi',
      transformObject: (arg) => markOptionalBodies(('openapiObject' in arg ? arg.openapiObject : {}) as Document) // kick's and unban's
    })
    // Listed in this document only: a host's @fastify/swagger sees these routes too, and would list
    // them (its document is often public) with a security scheme it lacks, which broke its build.
    context.addHook('onRoute', (route) => { route.config = { ...route.config, swaggerTransform: onlyInAdminDocument } })
    const openapi = (context as unknown as { wechatAuthAdminOpenapi: typeof context.swagger }).wechatAuthAdminOpenapi // swagger types only its default name
    context.get('/openapi.json', { schema: { hide: true, querystring: NoQuery } }, async () => openapi())
    userRoutes(context, sessions, 'sub')
    userRoutes(context, sessions, 'openid')
  }, { prefix: '/admin' })
}

export default adminRoutes
