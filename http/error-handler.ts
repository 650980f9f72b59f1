// The error handler of the gateway's own routes: Fastify's shape { statusCode, code, error, message }
// with stable codes. Coded errors pass through; anything unexpected becomes a 500 whose details stay
// in the log. Host apps keep their own handler: this one is set only inside the gateway's contexts.
// A host may set it for its own routes too (exported as wechatAuthErrorHandler): then the `detail`
// of the gateway's codes (why a session ended, what a route's authorize found missing) reaches its
// clients as well; Fastify's default handler answers the code and status without it.
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { RouteNotFoundError } from '../lib/errors.js'
import { loggedPath } from './logged-url.js'

// Prefixes of codes whose messages are written for clients (ours and Fastify's own).
const PUBLIC_CODE = /^(WX_|AUTH_|ADMIN_|RATE_LIMITED$|STORE_UNAVAILABLE$|ROUTE_NOT_FOUND$|UPGRADE_REFUSED$|SERVICE_BANS_FULL$|USER_NOT_FOUND$|METRICS_UNAVAILABLE$|FST_)/

export function errorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  // The client closed its connection before its request was answered: nobody to answer, and what
  // failed was about the missing client (its aborted body, its address gone), no server fault:
  // logged at error level, anyone could flood the log by hanging up.
  if (request.raw.destroyed && (error.code === 'ECONNRESET' || request.raw.socket?.destroyed !== false)) {
    request.log.info({ code: error.code }, 'client went away before its request was answered')
    // Sent to no one; it ends the request's lifecycle as any answer does.
    return reply.code(400).send({ statusCode: 400, code: 'HTTP_BAD_REQUEST', error: 'Bad Request', message: 'The request was not received in full' })
  }
  const known = typeof error.code === 'string' && PUBLIC_CODE.test(error.code)
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
