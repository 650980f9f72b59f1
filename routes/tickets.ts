// POST /tickets (Bearer) and POST /tickets/exchange: one-time tickets that hand the caller's user to
// another device (lib/tickets.ts). Registered by routes/auth.ts inside its context (prefix, error
// handler, JSON parser, rate limit).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { clientKey } from '../http/client-key.js'
import { requestContext, type PerMinute } from '../http/route-context.js'
import type { WebCookies } from '../lib/web-cookies.js'
import {
  AuthAccountBannedError, AuthDeviceInUseError, AuthDeviceTypeUnknownError, AuthHandoffRefusedError, RateLimitedError, StoreUnavailableError, TicketAudienceMismatchError, TicketInvalidError
} from '../lib/errors.js'
import { BearerAuth, errorResponses, NoQuery, RouteErrors as shared, Tags, TicketBody, TicketExchangeBody, TicketResponse, TokenPair, WebTokenPair } from '../lib/schemas.js'

const ticketRoutes: FastifyPluginAsyncTypebox<{ perMinute: PerMinute, cookies: WebCookies }> = async function ticketRoutes (fastify, { perMinute, cookies }) {
  const { tickets } = fastify.wechatAuthSessions
  const config = fastify.wechatAuthConfig

  fastify.post('/tickets', {
    onRequest: fastify.authenticate,
    config: { rateLimit: { ...perMinute(config.RATE_LIMIT_LOGIN_MAX), hook: 'preHandler', keyGenerator: (request) => `ticket|${request.wechatAuthUser.aud}|${request.wechatAuthUser.sub}` } },
    schema: {
      summary: 'Issue a one-time ticket that logs this user in on another device',
      description: 'The ticket is exchanged once (POST /tickets/exchange) within TICKET_TTL for a session of its device type.',
      tags: [Tags.sessions],
      operationId: 'issueTicket',
      security: BearerAuth,
      querystring: NoQuery,
      body: TicketBody,
      response: { 200: TicketResponse, ...errorResponses(...shared.any, ...shared.body, ...shared.authenticated, RateLimitedError, AuthDeviceTypeUnknownError, AuthHandoffRefusedError) }
    }
  }, async (request) => await tickets.issue(request.wechatAuthUser, request.body?.deviceType))

  fastify.post('/tickets/exchange', {
    config: { rateLimit: { ...perMinute(config.RATE_LIMIT_LOGIN_MAX), keyGenerator: (request) => `ticket|${clientKey(request.ip)}` } },
    schema: {
      summary: 'Exchange a one-time ticket for a token pair of a new session',
      tags: [Tags.sessions],
      operationId: 'exchangeTicket',
      querystring: NoQuery,
      body: TicketExchangeBody,
      response: {
        200: cookies.cookieMode ? WebTokenPair : TokenPair,
        ...errorResponses(...shared.any, ...shared.body, RateLimitedError, StoreUnavailableError, TicketInvalidError, TicketAudienceMismatchError,
          AuthDeviceTypeUnknownError, AuthDeviceInUseError, AuthAccountBannedError)
      }
    }
  }, async (request, reply) => cookies.opened(request, reply, await tickets.exchange(request.body.ticket, {
    deviceType: request.body.deviceType,
    deviceName: request.body.deviceName,
    ip: request.ip,
    userAgent: request.headers['user-agent'],
    request: requestContext(request)
  })))
}

export default ticketRoutes
