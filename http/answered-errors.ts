// Errors the gateway answers without throwing them, so that the metrics' onError hook never sees
// them: load shedding's 503 SERVER_OVERLOADED (http/load-shedding.ts), the readiness probe's 503
// STORE_UNAVAILABLE (routes/health.ts). Counted in wechat_auth_errors_total like the others.
import type { FastifyInstance } from 'fastify'

/** Counts `code` answered on `route` (a template), when the gateway's metrics are registered. */
export function countAnsweredError (fastify: FastifyInstance, code: string, route: string): void {
  if (fastify.hasDecorator('wechatAuthMetrics')) fastify.wechatAuthMetrics.error(code, route)
}
