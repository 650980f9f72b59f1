// GET /health (readiness): 200 when the session store can write for any user (store.ping: a write
// in each sixteenth of the slots), 503 otherwise; says which store is in use. GET /health/live
// (liveness): 200 while the process serves HTTP, whatever its dependencies.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import fp from 'fastify-plugin'
import { checkOptions, PATH } from '../lib/plugin-options.js'
import { ErrorResponse, HealthResponse, LiveResponse, Tags } from '../lib/schemas.js'
import { countAnsweredError } from '../http/answered-errors.js'
import { PROBE_CONFIG } from '../http/request-log.js'

export interface HealthRouteOptions {
  /** Where the readiness check answers ('/health' by default); the liveness check at `<path>/live`. */
  path?: string
}

// Probes within this time share one: however many checkers (a kubelet, a load balancer, a monitor)
// ask, the store sees at most one probe a second from each instance.
const PROBE_EVERY_MS = 1000

const healthRoutes: FastifyPluginAsyncTypebox<HealthRouteOptions> = async function healthRoutes (fastify, opts) {
  checkOptions(opts, { plugin: 'wechatAuthHealth', rules: { path: PATH }, encapsulated: true })
  const path = opts.path ?? '/health'
  const store = fastify.wechatAuthStore
  let last: { at: number, result: Promise<void> } | null = null
  const probe = async (): Promise<void> => {
    const now = performance.now() // monotonic: a clock set back does not keep an old answer
    if (last === null || now - last.at >= PROBE_EVERY_MS) last = { at: now, result: store.ping() }
    await last.result
  }
  // No querystring schema, unlike the gateway's other routes: probes (a load balancer's, a monitor's
  // cache-buster) may add parameters, and a refused probe would take a healthy instance out.
  fastify.get(`${path.replace(/\/$/, '')}/live`, {
    config: PROBE_CONFIG,
    schema: { summary: 'Liveness: whether the process serves HTTP', tags: [Tags.health], operationId: 'live', response: { 200: LiveResponse, '4xx': ErrorResponse } }
  }, async () => ({ status: 'ok' as const }))
  fastify.get(path, {
    config: PROBE_CONFIG,
    schema: {
      summary: 'Readiness: whether the session store answers',
      tags: [Tags.health],
      operationId: 'health',
      response: {
        200: HealthResponse,
        // The standalone server's load shedding answers its own 503 (SERVER_OVERLOADED), in the error shape.
        503: { description: 'STORE_UNAVAILABLE, or SERVER_OVERLOADED while the gateway sheds load', anyOf: [HealthResponse, ErrorResponse] },
        '4xx': ErrorResponse
      }
    }
  }, async (request, reply) => {
    try {
      await probe()
      return { status: 'ok' as const, store: store.kind }
    } catch (err) {
      request.log.warn({ err }, 'health check: session store unavailable')
      countAnsweredError(fastify, 'STORE_UNAVAILABLE', path)
      return await reply.code(503).send({ status: 'unavailable' as const, store: store.kind, code: 'STORE_UNAVAILABLE' })
    }
  })
}

// Its own context (encapsulated), after the store: registered without it, the boot fails naming it.
export default fp(healthRoutes, { name: 'wechat-auth-health', fastify: '5.x', encapsulate: true, dependencies: ['wechat-auth-store'] })
