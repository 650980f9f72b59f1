// The errors a Fastify instance answers, counted in the gateway's metrics (wechat_auth_errors_total),
// with the standalone server's answers before Fastify (http/server-options.ts). Used by the metrics
// plugin for the gateway, and by server.ts for its admin and metrics listeners.
import type { FastifyInstance } from 'fastify'
import { outcomeOf } from '../lib/audit.js'
import type { GatewayMetrics } from '../lib/metrics.js'
import { answeredError, uncounted } from './error-handler.js'
import { REFUSED_BEFORE_FASTIFY } from './server-options.js'

/**
 * Counts in wechat_auth_errors_total the errors `instance` answers and, on the standalone server, its
 * answers before Fastify: the gateway's, and those of the admin and metrics listeners (server.ts), so
 * that a wrong ADMIN_TOKEN or garbage sent to a listener is seen like any other error.
 */
export function countErrors (instance: FastifyInstance, metrics: GatewayMetrics): void {
  instance.addHook('onError', (request, _reply, error, done) => {
    // A client that hung up in the middle of its body is nobody's error (docs/operations.md); the code
    // counted is the one answered.
    if (!uncounted(error, request)) metrics.error(outcomeOf(answeredError(error, request)), request.routeOptions.url ?? '')
    done()
  })
  const onRefused = (code: string): void => { metrics.error(code, '') }
  instance.server.on(REFUSED_BEFORE_FASTIFY, onRefused)
  instance.addHook('onClose', async () => { instance.server.off(REFUSED_BEFORE_FASTIFY, onRefused) })
}
