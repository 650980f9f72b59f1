// GET /metrics: the gateway's Prometheus metrics in the text exposition format. The standalone server
// serves it on a listener of its own (METRICS_PORT; with WORKERS > 1 the primary, summing its
// workers'); a host registers it where it wants (guarded as it likes). Not in the OpenAPI document:
// it is for a scraper, not for clients.
import { errorCodes, type FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { MetricsUnavailableError } from '../lib/errors.js'
import { checkOptions, isRecord, PATH, type OptionRule } from '../lib/plugin-options.js'
import { PROBE_CONFIG } from '../http/request-log.js'

export interface MetricsRouteOptions {
  /** Where the metrics answer: '/metrics' by default. */
  path?: string
  /**
   * What a scrape answers, and its content type: fastify.wechatAuthMetrics.registry by default (so
   * registered after the gateway); the standalone primary passes its workers' sum.
   */
  source?: { metrics: () => Promise<string>, contentType: string }
}

const SOURCE: OptionRule = [(value) => isRecord(value) && typeof value.metrics === 'function' && typeof value.contentType === 'string', 'a prom-client Registry, or { metrics, contentType }']

const metricsRoutes: FastifyPluginAsync<MetricsRouteOptions> = async function metricsRoutes (fastify, opts) {
  checkOptions(opts, { plugin: 'wechatAuthMetricsRoute', rules: { path: PATH, source: SOURCE }, encapsulated: true })
  // The gateway's metrics unless told otherwise: then registered after them, or the boot fails naming them.
  if (opts.source === undefined && !fastify.hasDecorator('wechatAuthMetrics')) throw new errorCodes.FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED('wechat-auth-metrics', 'wechat-auth-metrics-route')
  const source = opts.source ?? fastify.wechatAuthMetrics.registry
  // A scrape every few seconds is logged at debug, as the health probes (http/request-log.ts). No
  // querystring schema: a scraper may add parameters (Prometheus `params`), which are ignored.
  fastify.get(opts.path ?? '/metrics', { config: PROBE_CONFIG, schema: { hide: true } }, async (_request, reply) => {
    let text: string
    try {
      text = await source.metrics()
    } catch (err) {
      throw new MetricsUnavailableError({ cause: err })
    }
    reply.header('cache-control', 'no-store').type(source.contentType)
    return text
  })
}

export default fp(metricsRoutes, { name: 'wechat-auth-metrics-route', fastify: '5.x', encapsulate: true })
