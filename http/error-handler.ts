// The error handler of the gateway's own routes: Fastify's shape { statusCode, code, error, message }
// with stable codes. Coded errors pass through; anything unexpected becomes a 500 whose details stay
// in the log. Host apps keep their own handler: this one is set only inside the gateway's contexts.
// A host may set it for its own routes too (exported as wechatAuthErrorHandler): then the `detail`
// of the gateway's codes (why a session ended, what a route's authorize found missing) reaches its
// clients as well; Fastify's default handler answers the code and status without it. The host's own
// 4xx errors keep their status and message there, as with Fastify's default handler (hostClientError).
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { RouteNotFoundError } from '../lib/errors.js'
import { isGatewayRoute } from '../lib/schemas.js'
import { loggedPath } from './logged-url.js'

// Prefixes of codes whose messages are written for clients (ours and Fastify's own).
const PUBLIC_CODE = /^(WX_|AUTH_|ADMIN_|RATE_LIMITED$|STORE_UNAVAILABLE$|ROUTE_NOT_FOUND$|UPGRADE_REFUSED$|SERVICE_BANS_FULL$|USER_NOT_FOUND$|METRICS_UNAVAILABLE$|FST_)/

/**
 * Whether `error` is about a client that closed its connection before its request was answered:
 * nobody to answer, and what failed was about the missing client (its body cut off, its address
 * gone), no server fault; logged at info, or anyone could flood the log by hanging up. Node destroys a
 * request once its body is read, so an ECONNRESET (a host route's upstream) after a complete body is not this.
 */
export const clientWentAway = (error: { code?: unknown }, request: FastifyRequest): boolean =>
  request.raw.destroyed && ((error.code === 'ECONNRESET' && !request.raw.complete) || request.raw.socket?.destroyed !== false)

/**
 * Whether an error is uncounted in wechat_auth_errors_total: the client's body cut off by its going
 * away (a failure after its whole request came, a store's say, is counted though nobody hears it).
 */
export const uncounted = (error: { code?: unknown }, request: FastifyRequest): boolean => clientWentAway(error, request) && !request.raw.complete

/**
 * The error a request is answered with, as counted too (http/count-errors.ts): no route here whatever
 * the body. Fastify reads a body before the 404 handler runs, and one that is malformed, oversized or
 * empty JSON (FST_ERR_CTP_*) would answer 400 or 413 for a route that is not there.
 */
export const answeredError = <E extends { code?: unknown }>(error: E, request: FastifyRequest): E | Error =>
  request.is404 && typeof error.code === 'string' && error.code.startsWith('FST_ERR_CTP_') ? notFound(request) : error

export function errorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (clientWentAway(error, request)) {
    request.log.info({ code: error.code }, 'client went away before its request was answered')
    // Sent to no one; it ends the request's lifecycle as any answer does.
    return reply.code(400).send({ statusCode: 400, code: 'HTTP_BAD_REQUEST', error: 'Bad Request', message: 'The request was not received in full' })
  }
  error = answeredError(error, request) as FastifyError
  const known = typeof error.code === 'string' && PUBLIC_CODE.test(error.code)
  const clientError = known || onGatewayRoute(request) ? undefined : hostClientError(error)
  if (clientError !== undefined) {
    request.log.info({ code: clientError.code, statusCode: clientError.statusCode }, 'request rejected')
    const headers = (error as { headers?: unknown }).headers // as Fastify's default handler sends them (a 405's Allow)
    if (typeof headers === 'object' && headers !== null) reply.headers(headers)
    return reply.code(clientError.statusCode).send(clientError)
  }
  const statusCode = known && typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500
  if (statusCode >= 500 && !known) {
    request.log.error({ err: error }, 'unexpected error')
  } else if (statusCode >= 500) {
    // WeChat or Redis down or slow: expected in operation, a warning without a stack; the cause's
    // name and message (never a request's secret: the clients and the store build them) say which.
    const cause = (error as { cause?: unknown }).cause
    request.log.warn({ code: error.code, statusCode, cause: cause instanceof Error ? `${cause.name}: ${cause.message}`.slice(0, 200) : undefined }, 'dependency failure')
  } else {
    request.log.info({ code: error.code, statusCode }, 'request rejected')
  }
  const detail = (error as { detail?: unknown }).detail
  const body = known
    ? { statusCode, code: error.code, error: STATUS_CODES[statusCode] ?? 'Error', message: error.message, ...(typeof detail === 'object' && detail !== null ? { detail } : {}) }
    : { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal Server Error' }
  return reply.code(statusCode).send(body)
}

// What a code looks like: what a client can match on (ours, Fastify's, @fastify/error's convention).
const CODE_SHAPE = /^[A-Z][A-Z0-9_]{1,63}$/

// The gateway's routes are tagged as its (as in the OpenAPI document). On them a host hook that throws
// (resolveUser, onPhoneNumber) answers 500 INTERNAL_ERROR, whatever its error's status (docs/embedding.md).
const onGatewayRoute = (request: FastifyRequest): boolean => isGatewayRoute(request.routeOptions.schema)

/**
 * The answer to a 4xx the gateway does not know, a host route's own (when the host sets this handler:
 * docs/embedding.md), as Fastify's default handler gives it: its status and message, which a 4xx means
 * for the client (unless it says `expose: false`, as http-errors' can), and its code, or `HTTP_<status>`
 * when it has none that looks like one. The gateway's own routes throw no such error: their 4xx are
 * coded. Anything else (a 5xx, no status) is the 500 whose details stay in the log.
 */
function hostClientError (error: FastifyError & { status?: unknown, expose?: unknown }): { statusCode: number, code: string, error: string, message: string } | undefined {
  const status = [error.statusCode, error.status].find((value) => typeof value === 'number')
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 499) return undefined
  const name = STATUS_CODES[status] ?? 'Error'
  return {
    statusCode: status,
    code: typeof error.code === 'string' && CODE_SHAPE.test(error.code) ? error.code : `HTTP_${status}`,
    error: name,
    message: error.expose === false ? name : error.message
  }
}

/**
 * A coded 404 (Fastify's own has no `code`); the path only, never the query string, and a token a
 * client put in the path (`/auth/<refresh token>`) is `[redacted]` (http/logged-url.ts's loggedPath).
 */
export async function notFoundHandler (request: FastifyRequest): Promise<never> {
  throw notFound(request)
}

const notFound = (request: FastifyRequest): Error => new RouteNotFoundError(request.method, loggedPath(request.url.split('?')[0] ?? '').slice(0, 200))

/**
 * For files served from a folder (Swagger UI's): a path the file server refuses (`..`, a NUL byte:
 * its 400 and 403 have no code) is a coded 404, as one that names no file; the rest as errorHandler.
 */
export function staticErrorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const refusedPath = error.code === undefined && typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500
  return errorHandler(refusedPath ? notFound(request) as FastifyError : error, request, reply)
}
