// What every context of gateway routes sets up the same way: the error handler with stable codes,
// a JSON parser that takes an empty body as "no body", and rate limits counted in the session store.
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import { RateLimitedError } from '../lib/errors.js'
import { errorHandler, notFoundHandler } from './error-handler.js'
import { rateLimitStore } from './rate-limit-store.js'
import type { CounterStore } from '../lib/store/types.js'

export async function setupRouteContext (fastify: FastifyInstance, opts: { bodyLimit: number, store: CounterStore }): Promise<void> {
  fastify.setErrorHandler(errorHandler)
  // Under the gateway's own prefix only: the root (AUTH_PREFIX empty) is the host's to answer.
  if (fastify.prefix !== '') fastify.setNotFoundHandler(notFoundHandler)

  // An empty body with content-type: application/json (Postman, wx.request) means "no body".
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: opts.bodyLimit }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    if (text === '') done(null, null)
    else parseJson(request, text, done)
  })

  await fastify.register(rateLimit, {
    global: false,
    // Counted in the session store: shared by all gateway instances when it is Redis. If the store
    // fails, the request goes on and meets the same failure in its handler (503 STORE_UNAVAILABLE).
    store: rateLimitStore(opts.store),
    skipOnError: true,
    errorResponseBuilder: (_request, context) => Object.assign(new RateLimitedError(context.after), { statusCode: context.statusCode })
  })
}

/** A route's rate limit: `max` requests a minute. */
export const perMinute = (max: number): { max: number, timeWindow: number } => ({ max, timeWindow: 60_000 })
