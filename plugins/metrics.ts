// Decorates fastify.wechatAuthMetrics: the gateway's Prometheus metrics (lib/metrics.ts) and the
// registry they are in. Wiring only: every request answered (route template, status code), every
// error code, the audit events of the sessions plugin, WeChat calls and access_token renewals
// (lib/diagnostics.ts); plugins/store.ts times the store's operations when this is registered.
// Serving them is routes/metrics.ts's: the standalone server on METRICS_PORT, a host where it wants.
import fp from 'fastify-plugin'
import { tokenRenewalChannel, wechatCallChannel, type TokenRenewalMessage, type WechatCallMessage } from '../lib/diagnostics.js'
import { countErrors } from '../http/count-errors.js'
import { createMetrics, type GatewayMetrics, type MetricsOptions } from '../lib/metrics.js'
import { BOOLEAN, checkOptions, isRecord, type OptionsOf } from '../lib/plugin-options.js'

export type { GatewayMetrics, MetricsOptions } from '../lib/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The gateway's metrics; `registry` holds them (prom-client). Present with the `metrics` option. */
    wechatAuthMetrics: GatewayMetrics
  }
}

// Duck-typed: a host's prom-client may be another copy than ours, and its Registry another class.
const isRegistry = (value: unknown): boolean => isRecord(value) && typeof value.registerMetric === 'function' && typeof value.metrics === 'function'
const OPTIONS: OptionsOf = {
  plugin: 'metrics',
  rules: { registry: [isRegistry, 'a prom-client Registry'], defaultMetrics: BOOLEAN, http: BOOLEAN },
  encapsulated: false,
  ignoredHint: 'it serves no route: give wechatAuthMetricsRoute its path, and its logLevel through a context of yours'
}

export default fp<MetricsOptions>(async function wechatAuthMetrics (fastify, opts) {
  checkOptions(opts, OPTIONS)
  const metrics = createMetrics(opts)
  fastify.decorate('wechatAuthMetrics', metrics)

  if (metrics.http) {
    fastify.addHook('onResponse', (request, reply, done) => {
      metrics.request(request.method, request.routeOptions.url ?? '', reply.statusCode, reply.elapsedTime / 1000)
      done()
    })
  }
  countErrors(fastify, metrics)
  const onCall = (message: unknown): void => { metrics.wechatCall(message as WechatCallMessage) }
  const onRenewal = (message: unknown): void => { metrics.tokenRenewal(message as TokenRenewalMessage) }
  wechatCallChannel.subscribe(onCall)
  tokenRenewalChannel.subscribe(onRenewal)
  fastify.addHook('onClose', async () => {
    wechatCallChannel.unsubscribe(onCall)
    tokenRenewalChannel.unsubscribe(onRenewal)
    metrics.close()
  })
  // The sessions plugin comes later (it needs the store, which this times): its events once all is loaded.
  fastify.addHook('onReady', async () => {
    if (fastify.hasDecorator('wechatAuthEvents')) fastify.wechatAuthEvents.on('audit', (event) => { metrics.audit(event) })
  })
}, { name: 'wechat-auth-metrics', fastify: '5.x' })
