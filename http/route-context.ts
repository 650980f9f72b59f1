// What every context of gateway routes sets up the same way: the error handler with stable codes,
// a JSON parser that takes an empty body as "no body", and rate limits counted in the session store.
//
// A host that registered @fastify/rate-limit itself (before the gateway, so its fastify.rateLimit is
// visible here) already limits every route it sees, ours included: its registration then counts
// the gateway's limits too, with the gateway's budgets and error code, so that each request is
// counted once (a second registration here would count it again, in another store, with another
// budget). Without one, the gateway registers its own, counting in the session store.
import rateLimit from '@fastify/rate-limit'
import { clientKey } from './client-key.js'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { RequestContext } from '../lib/audit.js'
import { RateLimitedError, UpgradeRefusedError } from '../lib/errors.js'
import { countedWithNext, type CountedWithNext } from './counted-with-next.js'
import { errorHandler, notFoundHandler } from './error-handler.js'
import { rateLimitStore } from './rate-limit-store.js'
import { asksToUpgrade } from './server-options.js'
import type { CounterStore } from '../lib/store/types.js'

/** What the audit events of a flow serving `request` say of it: its client IP and id (lib/audit.ts). */
export const requestContext = (request: FastifyRequest): RequestContext => ({ ip: request.ip, requestId: String(request.id) })

/** A route's rate limit: `max` requests a minute, refused with 429 RATE_LIMITED whichever registration counts it. */
export type PerMinute = (max: number) => ReturnType<typeof limitOf>

/**
 * A POST route's budget of `max` a minute per `key` (the client IP by default), counted with the
 * flow's next store command (http/counted-with-next.ts).
 */
export type CountedPerMinute = (path: string, max: number, key?: (request: FastifyRequest) => string) => CountedWithNext

export interface RouteLimits {
  perMinute: PerMinute
  /** Absent when a host's @fastify/rate-limit counts the gateway's limits: then use perMinute. */
  counted?: CountedPerMinute
}

export async function setupRouteContext (fastify: FastifyInstance, opts: { bodyLimit: number, store: CounterStore }): Promise<RouteLimits> {
  fastify.setErrorHandler(errorHandler)
  // Under the gateway's own prefix only: the root (AUTH_PREFIX empty) is the host's to answer.
  if (fastify.prefix !== '') fastify.setNotFoundHandler(notFoundHandler)

  // JSON only: Fastify's own text/plain parser would hand the schema a string (400 FST_ERR_VALIDATION)
  // where the answer is 415 FST_ERR_CTP_INVALID_MEDIA_TYPE, as for any other type.
  fastify.removeContentTypeParser('text/plain')
  // A request that asks to switch protocols (Upgrade: websocket) has no body Node will parse: it
  // would wait for one until a timeout. The gateway speaks no other protocol: refused at once.
  // A callback hook, not an async one: it runs on every request, and a promise each is measurable there.
  // Every answer here is about one client (its tokens, sessions, QR secret, its own refusals): no
  // cache may keep one (RFC 6749 5.1 for token answers). A route that may be cached says so (JWKS).
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('cache-control', 'no-store')
    if (!asksToUpgrade(request.headers)) return done()
    reply.header('connection', 'close')
    done(new UpgradeRefusedError())
  })

  // An empty body with content-type: application/json (Postman, wx.request) means "no body".
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: opts.bodyLimit }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    if (text === '') done(null, null)
    else parseJson(request, text, done)
  })

  if (fastify.hasDecorator('rateLimit')) {
    fastify.log.info('a @fastify/rate-limit registration of the host app counts the gateway\'s rate limits')
    // The host's store is not the gateway's: if it fails, the request goes on to its handler.
    return { perMinute: (max) => limitOf(max, true) }
  }
  await fastify.register(rateLimit, {
    global: false,
    // Counted in the session store: shared by all gateway instances when it is Redis.
    store: rateLimitStore(opts.store)
  })
  // The store the handler needs: if counting fails, the request fails at once (503
  // STORE_UNAVAILABLE) instead of waiting out the store's deadline a second time in its handler.
  return {
    perMinute: (max) => limitOf(max, false),
    // Keyed as @fastify/rate-limit keys the same route (its method and URL, then the key: the IP by default).
    counted: (path, max, key = (request) => clientKey(request.ip)) => countedWithNext(opts.store, { scope: `POST${fastify.prefix}${path}:`, max, windowMs: 60_000, key })
  }
}

function limitOf (max: number, skipOnError: boolean) {
  return {
    max,
    timeWindow: 60_000,
    skipOnError,
    errorResponseBuilder: (_request: unknown, context: { after: string, statusCode: number }) =>
      Object.assign(new RateLimitedError(context.after), { statusCode: context.statusCode })
  }
}
