// GET /metrics (routes/metrics.ts): the registry's text with Prometheus's content type, never cached;
// a source that cannot collect (the standalone primary whose worker did not answer) is a coded 503.
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { test } from 'tap'
import { errorHandler } from '../../http/error-handler.js'
import metricsRoutes from '../../routes/metrics.js'
import { refusedWithout } from '../helper.js'

test('answers the source\'s text with its content type; a failing source is 503 METRICS_UNAVAILABLE', async (t) => {
  const registry = new Registry()
  registry.setDefaultLabels({ service: 'gateway' })
  const app = Fastify()
  t.teardown(async () => await app.close())
  app.setErrorHandler(errorHandler)
  await app.register(metricsRoutes, { source: registry })
  await app.register(metricsRoutes, { path: '/broken', source: { contentType: registry.contentType, metrics: async () => { throw new Error('Operation timed out.') } } })

  const ok = await app.inject('/metrics')
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers['content-type'], registry.contentType)
  t.equal(ok.headers['cache-control'], 'no-store')
  t.equal(ok.body, await registry.metrics())
  t.equal((await app.inject('/metrics?name[]=up&format=text')).statusCode, 200, 'a scraper\'s parameters are ignored, not refused')
  const broken = await app.inject('/broken')
  t.equal(broken.statusCode, 503, broken.body)
  t.equal(broken.json().code, 'METRICS_UNAVAILABLE')
})

test('registered without the gateway\'s metrics and without a source, it refuses the boot naming the plugin to register first', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await refusedWithout(t, app, metricsRoutes, {}, 'wechat-auth-metrics', 'wechat-auth-metrics-route')
  const bad = Fastify()
  t.teardown(async () => await bad.close())
  await t.rejects(async () => { await bad.register(metricsRoutes, { path: 'metrics', source: new Registry() }) },
    { code: 'CONFIG_INVALID', message: /wechatAuthMetricsRoute: option path must be a path that starts with \// })
})
