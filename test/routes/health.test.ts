import { test } from 'tap'
import { buildApp, startRedis, startSim } from '../helper.js'

test('GET /health says which store is in use and whether it answers', async (t) => {
  const sim = await startSim(t)
  const memory = await buildApp(t, { sim })
  t.same((await memory.inject('/health')).json(), { status: 'ok', store: 'memory' })

  const redis = await startRedis(t, { own: true })
  const app = await buildApp(t, { sim, redisServer: redis, config: { STORE_TIMEOUT_MS: 300 } })
  const ok = await app.inject('/health')
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { status: 'ok', store: 'redis' })
  await redis.stop()
  const down = await app.inject('/health')
  t.equal(down.statusCode, 503)
  t.same(down.json(), { status: 'unavailable', store: 'redis', code: 'STORE_UNAVAILABLE' })
  const live = await app.inject('/health/live')
  t.equal(live.statusCode, 200, 'liveness does not depend on Redis')
  t.same(live.json(), { status: 'ok' })
})
