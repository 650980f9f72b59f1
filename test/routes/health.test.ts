import Fastify from 'fastify'
import { test } from 'tap'
import configPlugin from '../../plugins/config.js'
import storePlugin from '../../plugins/store.js'
import healthRoutes from '../../routes/health.js'
import { buildApp, refusedWithout, startRedis, startSim } from '../helper.js'
import { until } from '../redis-deployments.js'

test('GET /health says which store is in use and whether it can write', async (t) => {
  const sim = await startSim(t)
  const memory = await buildApp(t, { sim })
  t.same((await memory.inject('/health')).json(), { status: 'ok', store: 'memory' })

  const redis = await startRedis(t, { own: true })
  const app = await buildApp(t, { sim, redisServer: redis, config: { STORE_TIMEOUT_MS: 300 } })
  const ok = await app.inject('/health')
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { status: 'ok', store: 'redis' })
  await redis.stop()
  const stopped = Date.now()
  // Probes within a second share one (the store sees one a second however many checkers ask).
  await until(async () => (await app.inject('/health')).statusCode === 503, '/health to see Redis down', 3000)
  t.ok(Date.now() - stopped < 3000, 'within the probe\'s second and one store deadline (and a loaded machine\'s margin)')
  const down = await app.inject('/health')
  t.equal(down.statusCode, 503)
  t.same(down.json(), { status: 'unavailable', store: 'redis', code: 'STORE_UNAVAILABLE' })
  const live = await app.inject('/health/live')
  t.equal(live.statusCode, 200, 'liveness does not depend on Redis')
  t.same(live.json(), { status: 'ok' })
})

test('probes may add query parameters (a cache-buster, a monitor\'s tag): the health routes answer as without', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim })
  for (const url of ['/health?x=1', '/health?_=1700000000000&_=2', '/health/live?probe=kubelet']) {
    const res = await app.inject(url)
    t.same([res.statusCode, res.json().status], [200, 'ok'], url)
  }
})

test('GET /health: checkers asking at once cost the store one probe a second', async (t) => {
  const sim = await startSim(t)
  const redis = await startRedis(t, { own: true })
  const app = await buildApp(t, { sim, redisServer: redis })
  let probes = 0
  const ping = app.wechatAuthStore.ping.bind(app.wechatAuthStore)
  app.wechatAuthStore.ping = async () => { probes++; await ping() }
  const answers = await Promise.all(Array.from({ length: 20 }, async () => (await app.inject('/health')).statusCode))
  t.same([...new Set(answers)], [200])
  t.equal(probes, 1, 'twenty checks, one probe')
})

test('registered alone, without the session store, it refuses the boot naming the plugin to register first', async (t) => {
  const alone = Fastify()
  t.teardown(async () => await alone.close())
  await refusedWithout(t, alone, healthRoutes, {}, 'wechat-auth-store', 'wechat-auth-health')
  // With the store (and the configuration it needs): at /health by default, or under the path given.
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(configPlugin, { config: {} })
  await app.register(storePlugin)
  await app.register(healthRoutes)
  await app.register(healthRoutes, { path: '/ready' })
  const bad = Fastify()
  t.teardown(async () => await bad.close())
  await t.rejects(async () => { await bad.register(configPlugin, { config: {} }).register(storePlugin).register(healthRoutes, { path: 'ready' }) },
    { code: 'CONFIG_INVALID', message: /wechatAuthHealth: option path must be a path that starts with \// })
  for (const url of ['/health', '/health/live', '/ready', '/ready/live']) t.equal((await app.inject(url)).statusCode, 200, url)
})
