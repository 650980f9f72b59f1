// Load shedding: a blocked event loop makes the gateway answer 503 SERVER_OVERLOADED with retry-after (the
// liveness route excepted) until it recovers. Real HTTP against a listening instance.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import { test } from 'tap'
import { request } from 'undici'
import { registerLoadShedding } from '../../http/load-shedding.js'
import metricsPlugin from '../../plugins/metrics.js'
import { parseMetrics, valueOf } from '../prometheus.js'

test('while the event loop lags past the bound: 503 SERVER_OVERLOADED with retry-after, liveness still answered; then back to normal', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(metricsPlugin, { defaultMetrics: false })
  await registerLoadShedding(app, { maxEventLoopDelayMs: 100, livePath: '/health/live' })
  app.get('/health/live', async () => ({ status: 'ok' }))
  app.get('/work', async () => ({ done: true }))
  // A route whose own 503 is another shape (GET /health's { status, store, code }).
  app.get('/shaped', { schema: { response: { 503: { type: 'object', required: ['status'], properties: { status: { type: 'string' } } } } } }, async () => ({ done: true }))
  // Overload as it comes: the loop still turns, but every turn is long (200 ms). The plugin sheds on
  // the mean lag of the turns in each of its sampling seconds, so the overload must outlast two of
  // them, whenever it starts in one: a single long block passed the bound or not by where it fell
  // (a slow start of this test once put it on the wrong side: 200). It runs in the background, and
  // requests are answered between two turns.
  let overloaded = Promise.resolve()
  app.get('/block', async () => {
    overloaded = (async () => {
      const end = Date.now() + 2_600
      while (Date.now() < end) {
        const turn = Date.now() + 200
        while (Date.now() < turn); // a handler that hogs the event loop
        await new Promise((resolve) => setImmediate(resolve))
      }
    })()
    return { blocked: true }
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal((await request(`${base}/work`)).statusCode, 200, 'not shedding at rest')
  await (await request(`${base}/block`)).body.dump()
  let shed = await request(`${base}/work`)
  for (let i = 0; i < 30 && shed.statusCode !== 503; i++) {
    await shed.body.dump()
    shed = await request(`${base}/work`)
  }
  t.equal(shed.statusCode, 503)
  t.equal(shed.headers['retry-after'], '5')
  t.same(await shed.body.json(), { statusCode: 503, code: 'SERVER_OVERLOADED', error: 'Service Unavailable', message: 'The gateway is overloaded; retry after the retry-after header\'s seconds' })
  t.equal((await request(`${base}/health/live`)).statusCode, 200, 'liveness is answered: a busy gateway is not a dead one')
  const busted = await request(`${base}/health/live?cb=123`)
  t.same([busted.statusCode, await busted.body.text()], [200, '{"status":"ok"}'], 'with a checker\'s cache-buster too: by its route, not its URL')
  const shaped = await request(`${base}/shaped`)
  t.same([shaped.statusCode, (await shaped.body.json() as { code?: string }).code], [503, 'SERVER_OVERLOADED'], 'a route with a 503 schema of its own: the same answer, not a 500 of its serialiser')
  t.equal(valueOf(parseMetrics(await app.wechatAuthMetrics.registry.metrics()), 'wechat_auth_errors_total', { code: 'SERVER_OVERLOADED' }), 2, 'counted with the other coded errors')
  await overloaded
  let recovered = 0
  for (let i = 0; i < 40 && recovered !== 200; i++) {
    await sleep(100)
    recovered = (await request(`${base}/work`)).statusCode
  }
  t.equal(recovered, 200, 'answers again once the loop has caught up')
})

test('MAX_EVENT_LOOP_DELAY_MS=0 turns it off', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await registerLoadShedding(app, { maxEventLoopDelayMs: 0, livePath: '/health/live' })
  t.notOk(app.hasDecorator('isUnderPressure'), 'not registered')
})
