// POST /step-up (Bearer): the session proves its user again with a fresh wx.login() code before a
// sensitive action (二次认证). Registered by routes/auth.ts inside its context (prefix, error
// handler, JSON parser, rate limit).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { requestContext, type PerMinute } from '../http/route-context.js'
import { AuthStepUpMismatchError, AuthStepUpUnavailableError, RateLimitedError, WxCodeInvalidError, WxCodeUsedError, WxUserBlockedError } from '../lib/errors.js'
import { BearerAuth, errorResponses, NoQuery, RouteErrors as shared, StepUpBody, StepUpResponse, Tags } from '../lib/schemas.js'

const stepUpRoutes: FastifyPluginAsyncTypebox<{ perMinute: PerMinute }> = async function stepUpRoutes (fastify, { perMinute }) {
  const sessions = fastify.wechatAuthSessions

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
      querystring: NoQuery,
      body: StepUpBody,
      response: {
        200: StepUpResponse,
        ...errorResponses(...shared.any, ...shared.body, ...shared.authenticated, RateLimitedError, AuthStepUpMismatchError, AuthStepUpUnavailableError, WxCodeInvalidError, WxCodeUsedError,
          WxUserBlockedError, ...shared.wechat)
      }
    }
  }, async (request) => {
    const { steppedUpAt, expiresIn } = await sessions.stepUp(request.wechatAuthUser, request.body.code, requestContext(request))
    return { steppedUpAt: new Date(steppedUpAt).toISOString(), expiresIn }
  })
}

export default stepUpRoutes
