// GET /me, GET /sessions, DELETE /sessions/:sid and POST /step-up (Bearer): the caller's session,
// their own sessions ("my devices"), and proving the user again before a sensitive action.
// Registered by routes/auth.ts inside its context (prefix, error handler, JSON parser, rate limit).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { PerMinute } from '../http/route-context.js'
import {
  AuthSessionNotFoundError, AuthStepUpMismatchError, RateLimitedError, WxCodeInvalidError, WxCodeUsedError, WxUserBlockedError
} from '../lib/errors.js'
import {
  BearerAuth, errorResponses, MeResponse, NoContent, RouteErrors as shared, SessionParams, SessionsResponse, StepUpBody, StepUpResponse, Tags
} from '../lib/schemas.js'

const iso = (ms: number): string => new Date(ms).toISOString()

const sessionRoutes: FastifyPluginAsyncTypebox<{ perMinute: PerMinute }> = async function sessionRoutes (fastify, { perMinute }) {
  const sessions = fastify.wechatAuthSessions

  fastify.get('/me', {
    onRequest: fastify.authenticate,
    schema: {
      summary: 'Who the access token is for',
      tags: [Tags.sessions],
      operationId: 'me',
      security: BearerAuth,
      response: { 200: MeResponse, ...errorResponses(...shared.any, ...shared.authenticated) }
    }
  }, async (request) => {
    const { openid, unionid, sid, iat, exp, roles, permissions, steppedUpAt } = request.wechatAuthUser
    return {
      openid,
      ...(unionid !== undefined ? { unionid } : {}),
      sessionId: sid,
      issuedAt: iso(iat * 1000),
      expiresAt: iso(exp * 1000),
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
      response: { 204: NoContent, ...errorResponses(...shared.any, ...shared.authenticated, 'FST_ERR_VALIDATION', AuthSessionNotFoundError) }
    }
  }, async (request, reply) => {
    await sessions.endSession(request.wechatAuthUser, request.params.sid)
    return await reply.code(204).send(null)
  })

  fastify.post('/step-up', {
    onRequest: fastify.authenticate,
    // Per user: each step-up spends a code at WeChat.
    config: { rateLimit: { ...perMinute(fastify.wechatAuthConfig.RATE_LIMIT_LOGIN_MAX), hook: 'preHandler', keyGenerator: (request) => `step-up|${request.wechatAuthUser.aud}|${request.wechatAuthUser.sub}` } },
    schema: {
      summary: 'Prove the user again with a fresh wx.login() code (step-up, 二次认证)',
      description: 'Routes that ask for a recent step-up answer 401 AUTH_STEP_UP_REQUIRED until the session has one.',
      tags: [Tags.sessions],
      operationId: 'stepUp',
      security: BearerAuth,
      body: StepUpBody,
      response: {
        200: StepUpResponse,
        ...errorResponses(...shared.any, ...shared.body, ...shared.authenticated, RateLimitedError, AuthStepUpMismatchError, WxCodeInvalidError, WxCodeUsedError,
          WxUserBlockedError, ...shared.wechat)
      }
    }
  }, async (request) => {
    const { steppedUpAt, expiresIn } = await sessions.stepUp(request.wechatAuthUser, request.body.code)
    return { steppedUpAt: iso(steppedUpAt), expiresIn }
  })
}

export default sessionRoutes
