// GET /health (readiness): 200 when the session store answers, 503 otherwise; says which store is
// in use. GET /health/live (liveness): 200 while the process serves HTTP, whatever its dependencies.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HealthResponse, LiveResponse, Tags } from '../lib/schemas.js'

export interface HealthRouteOptions {
  path: string
}

const healthRoutes: FastifyPluginAsyncTypebox<HealthRouteOptions> = async function healthRoutes (fastify, opts) {
  const store = fastify.wechatAuthStore
  fastify.get(`${opts.path.replace(/\/$/, '')}/live`, {
    schema: { summary: 'Liveness: whether the process serves HTTP', tags: [Tags.health], operationId: 'live', response: { 200: LiveResponse } }
  }, async () => ({ status: 'ok' as const }))
  fastify.get(opts.path, {
    schema: {
      summary: 'Readiness: whether the session store answers',
      tags: [Tags.health],
      operationId: 'health',
      response: { 200: HealthResponse, 503: { ...HealthResponse, description: 'STORE_UNAVAILABLE' } }
    }
  }, async (request, reply) => {
    try {
      await store.ping()
      return { status: 'ok' as const, store: store.kind }
    } catch (err) {
      request.log.warn({ err }, 'health check: session store unavailable')
      return await reply.code(503).send({ status: 'unavailable' as const, store: store.kind, code: 'STORE_UNAVAILABLE' })
    }
  })
}

export default healthRoutes
