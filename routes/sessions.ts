// GET /me, GET /sessions and DELETE /sessions/:sid (Bearer): the caller's session and their own
// sessions, "my devices". Registered by routes/auth.ts inside its context (prefix, error handler,
// JSON parser, and the web cookies in cookie mode).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { requestContext } from '../http/route-context.js'
import { AuthSessionNotFoundError } from '../lib/errors.js'
import type { WebCookies } from '../lib/web-cookies.js'
import { BearerAuth, errorResponses, MeResponse, NoBody, NoContent, NoQuery, RouteErrors as shared, SessionParams, SessionsResponse, Tags } from '../lib/schemas.js'

const iso = (ms: number): string => new Date(ms).toISOString()

// A token's times (iat, exp: seconds) as ISO dates, remembered: clients present a token again and
// again, and tokens issued in the same second share theirs (toISOString was 2.8 % of GET /me's samples).
const TOKEN_TIMES_KEPT = 10_000
const tokenTimes = new Map<number, string>()
function tokenTime (sec: number): string {
  let text = tokenTimes.get(sec)
  if (text === undefined) {
    if (tokenTimes.size >= TOKEN_TIMES_KEPT) tokenTimes.clear()
    text = iso(sec * 1000)
    tokenTimes.set(sec, text)
  }
  return text
}

const sessionRoutes: FastifyPluginAsyncTypebox<{ cookies: WebCookies }> = async function sessionRoutes (fastify, { cookies }) {
  const sessions = fastify.wechatAuthSessions

  fastify.get('/me', {
    onRequest: fastify.authenticate,
    schema: {
      summary: 'Who the access token is for',
      tags: [Tags.sessions],
      operationId: 'me',
      security: BearerAuth,
      querystring: NoQuery,
      response: { 200: MeResponse, ...errorResponses(...shared.any, ...shared.authenticated) }
    }
  }, async (request) => {
    const { openid, unionid, sid, iat, exp, roles, permissions, steppedUpAt } = request.wechatAuthUser
    return {
      openid,
      unionid, // left out of the answer when undefined, by its serializer: no object spread per request
      sessionId: sid,
      issuedAt: tokenTime(iat),
      expiresAt: tokenTime(exp),
      roles: [...roles],
      permissions: [...permissions],
      steppedUpAt: steppedUpAt === null ? null : iso(steppedUpAt)
    }
  })

  fastify.get('/sessions', {
    onRequest: fastify.authenticate,
    schema: {
      summary: 'The caller\'s live sessions (my devices)',
      tags: [Tags.sessions],
      operationId: 'listSessions',
      security: BearerAuth,
      querystring: NoQuery,
      response: { 200: SessionsResponse, ...errorResponses(...shared.any, ...shared.authenticated) }
    }
  }, async (request) => {
    const list = await sessions.listSessions(request.wechatAuthUser)
    return {
      sessions: list.map(({ sid, createdAt, lastRefreshAt, expiresAt, ...device }) => ({
        sessionId: sid,
        ...device,
        createdAt: iso(createdAt),
        lastRefreshAt: lastRefreshAt === null ? null : iso(lastRefreshAt),
        expiresAt: iso(expiresAt)
      }))
    }
  })

  fastify.delete('/sessions/:sid', {
    onRequest: fastify.authenticate,
    schema: {
      summary: 'End one of the caller\'s sessions (sign a device out)',
      tags: [Tags.sessions],
      operationId: 'endSession',
      security: BearerAuth,
      params: SessionParams,
      querystring: NoQuery,
      body: NoBody,
      response: { 204: NoContent, ...errorResponses(...shared.any, ...shared.body, ...shared.params, ...shared.authenticated, AuthSessionNotFoundError) }
    }
  }, async (request, reply) => {
    await sessions.endSession(request.wechatAuthUser, request.params.sid, requestContext(request))
    // Signing out this very device: its refresh cookie goes, as at logout.
    if (cookies.cookieMode && request.params.sid === request.wechatAuthUser.sid) cookies.clearRefresh(request, reply)
    return await reply.code(204).send(null)
  })
}

export default sessionRoutes
