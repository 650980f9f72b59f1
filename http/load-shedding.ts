// Load shedding for the standalone gateway (@fastify/under-pressure): while the event loop lags past
// MAX_EVENT_LOOP_DELAY_MS, requests are answered at once with 503 SERVER_OVERLOADED and retry-after, before
// the process falls over; liveness (/health/live) is still answered, so that an orchestrator does not
// restart a gateway that is only busy. A host app sheds its own load.
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import { countAnsweredError } from './answered-errors.js'

/** Seconds a shed client is told to wait. */
export const OVERLOADED_RETRY_AFTER_SEC = 5

export const OVERLOADED_BODY = {
  statusCode: 503,
  code: 'SERVER_OVERLOADED',
  error: 'Service Unavailable',
  message: 'The gateway is overloaded; retry after the retry-after header\'s seconds'
} as const

export async function registerLoadShedding (server: FastifyInstance, opts: { maxEventLoopDelayMs: number, livePath: string }): Promise<void> {
  if (opts.maxEventLoopDelayMs === 0) return
  await server.register(underPressure, {
    maxEventLoopDelay: opts.maxEventLoopDelayMs,
    pressureHandler: async (request, reply) => {
      // Not answering here lets the request through. By its route, not its URL: a checker's
      // cache-buster (`/health/live?t=…`) is still liveness.
      if (request.routeOptions.url === opts.livePath) return
      request.log.warn({ code: OVERLOADED_BODY.code }, 'shedding load: the event loop lags')
      countAnsweredError(request.server, OVERLOADED_BODY.code, request.routeOptions.url ?? '')
      // Serialised here: the route's own response schema for 503 (GET /health's is HealthResponse) would refuse it (a 500).
      await reply.code(503).header('retry-after', String(OVERLOADED_RETRY_AFTER_SEC)).type('application/json; charset=utf-8').send(JSON.stringify(OVERLOADED_BODY))
    }
  })
}
