// GET /auth/qr/:id/events while Redis is down or hung, over real HTTP on a redis-server these tests
// stop, restart and freeze: the page is told once, with the code, and told again when the store
// answers; past the code's expiry the stream ends rather than stay open for ever.
import type { FastifyInstance } from 'fastify'
import { get } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import type { Simulator } from '../../simulator/index.js'
import { bearer, buildApp, login, redisClient, startRedis, startSim, type RedisServer } from '../helper.js'
import { until } from '../redis-deployments.js'

type Tap = { teardown: (fn: () => unknown) => void }
interface Sent { event: string, data: { state?: string, code?: string } }

/** An event stream read as it comes: its events so far, and its end. */
function follow (url: string): { events: Sent[], ended: Promise<void> } {
  const events: Sent[] = []
  const ended = new Promise<void>((resolve, reject) => {
    get(url, (res) => {
      let pending = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        pending += chunk
        for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n')) {
          const block = pending.slice(0, end)
          pending = pending.slice(end + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) })
        }
      })
      res.on('end', resolve)
      res.on('error', reject)
    }).on('error', reject)
  })
  return { events, ended }
}

const shown = (events: Sent[]): string[] => events.map((e) => `${e.event}:${e.data.state ?? e.data.code ?? ''}`)
const has = (events: Sent[], what: string): () => Promise<boolean> => async () => shown(events).includes(what)

async function gateway (t: Tap, sim: Simulator, redis: RedisServer, mode: string): Promise<{ app: FastifyInstance, base: string }> {
  const app = await buildApp(t, { sim, redisServer: redis, config: { ACCESS_CHECK: mode as 'tracked', STORE_TIMEOUT_MS: 200 } })
  return { app, base: await app.listen({ port: 0, host: '127.0.0.1' }) }
}

async function create (app: FastifyInstance): Promise<{ id: string, secret: string }> {
  return (await app.inject({ method: 'POST', url: '/auth/qr' })).json()
}

for (const mode of ['tracked', 'strict']) {
  test(`ACCESS_CHECK=${mode}: Redis stopped, then started again empty`, async (t) => {
    const redis = await startRedis(t, { own: true })
    const sim = await startSim(t)
    const { app, base } = await gateway(t, sim, redis, mode)
    const { id } = await create(app)
    const stream = follow(`${base}/auth/qr/${id}/events`)
    await until(has(stream.events, 'state:pending'), 'the first state', 5000, 20)
    await redis.stop()
    await until(has(stream.events, 'unavailable:STORE_UNAVAILABLE'), 'the outage told', 3000, 20)
    await sleep(1200)
    t.same(shown(stream.events), ['state:pending', 'unavailable:STORE_UNAVAILABLE'], 'told once, however many reads fail')
    await redis.start()
    await stream.ended
    t.same(shown(stream.events), ['state:pending', 'unavailable:STORE_UNAVAILABLE', 'state:expired'], 'the login was lost with Redis: expired, and the stream ends')
  })

  test(`ACCESS_CHECK=${mode}: Redis frozen, then back: the state again, and the login goes on`, async (t) => {
    const redis = await startRedis(t, { own: true })
    const sim = await startSim(t)
    const { app, base } = await gateway(t, sim, redis, mode)
    const { id, secret } = await create(app)
    const mp = await login(app, `qr.outage.${mode}`)
    const stream = follow(`${base}/auth/qr/${id}/events`)
    await until(has(stream.events, 'state:pending'), 'the first state', 5000, 20)
    redis.pause()
    // Polled every 500 ms (strict) or 5 s (tracked: a frozen connection sends no error), then STORE_TIMEOUT_MS.
    await until(has(stream.events, 'unavailable:STORE_UNAVAILABLE'), 'the outage told', 8000, 20)
    redis.resume()
    await until(async () => shown(stream.events).length === 3, 'the state after the outage', 8000, 20)
    t.same(shown(stream.events), ['state:pending', 'unavailable:STORE_UNAVAILABLE', 'state:pending'], 'sent again though unchanged: the page knows the store answers')
    await app.inject({ method: 'POST', url: `/auth/qr/${id}/scan`, headers: bearer(mp.accessToken) })
    await until(has(stream.events, 'state:scanned'), 'the scan', 8000, 20) // else both may come as one change
    await app.inject({ method: 'POST', url: `/auth/qr/${id}/confirm`, headers: bearer(mp.accessToken) })
    await stream.ended
    t.same(shown(stream.events).slice(3), ['state:scanned', 'state:confirmed'])
    t.equal((await app.inject({ method: 'POST', url: `/auth/qr/${id}/token`, payload: { secret } })).statusCode, 200, 'collected')
  })
}

test('past the expiry during an outage, the stream ends: the page reconnects to a coded 503', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const { app, base } = await gateway(t, sim, redis, 'strict')
  const { id } = await create(app)
  await redisClient(t, redis.url).hset(`${redis.prefix}qr:{${id}}`, 'e', String(Date.now() + 1500)) // expires soon
  const stream = follow(`${base}/auth/qr/${id}/events`)
  await until(has(stream.events, 'state:pending'), 'the first state', 5000, 20)
  redis.pause()
  const started = Date.now()
  await Promise.race([stream.ended, sleep(8000).then(() => { throw new Error('the stream outlived its expiry') })])
  t.ok(Date.now() - started < 5000, `ended ${Date.now() - started} ms after the freeze`)
  t.same(shown(stream.events), ['state:pending', 'unavailable:STORE_UNAVAILABLE'])
  const again = await app.inject(`/auth/qr/${id}/events`)
  t.same([again.statusCode, again.json().code], [503, 'STORE_UNAVAILABLE'], 'an EventSource reconnecting gets a coded 503, not a stream')
  redis.resume()
})

test('the stream\'s own read refused while the watch\'s still works (an ACL changed): read again until it answers, the state sent then', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  await admin.call('ACL', 'SETUSER', 'qr', 'on', '>pw', '~*', '&*', '+@all')
  const sim = await startSim(t)
  const { app, base } = await gateway(t, sim, { ...redis, url: redis.url.replace('redis://', 'redis://qr:pw@') }, 'strict')
  const { id } = await create(app)
  const stream = follow(`${base}/auth/qr/${id}/events`)
  await until(has(stream.events, 'state:pending'), 'the first state', 5000, 20)
  await admin.call('ACL', 'SETUSER', 'qr', '-hgetall') // the state's read, not the watch's HGET of the version
  await admin.hincrby(`${redis.prefix}qr:{${id}}`, 'v', 1) // a change the watch sees: the stream reads, and is refused
  await until(has(stream.events, 'unavailable:STORE_UNAVAILABLE'), 'the refused read told', 5000, 20)
  await admin.call('ACL', 'SETUSER', 'qr', '+hgetall')
  await until(async () => shown(stream.events).length === 3, 'the state once the read works again, though the version did not change since', 4000, 20)
  t.same(shown(stream.events), ['state:pending', 'unavailable:STORE_UNAVAILABLE', 'state:pending'])
})

test('GET /auth/qr/:id and its event stream share one RATE_LIMIT_QR_POLL_MAX budget per client IP', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { RATE_LIMIT_QR_POLL_MAX: 3 } })
  const { id } = (await app.inject({ method: 'POST', url: '/auth/qr' })).json<{ id: string }>()
  for (let i = 0; i < 3; i++) t.equal((await app.inject(`/auth/qr/${id}`)).statusCode, 200, `poll ${i + 1} within the budget`)
  const stream = await app.inject({ method: 'GET', url: `/auth/qr/${id}/events` })
  t.same([stream.statusCode, stream.json().code], [429, 'RATE_LIMITED'], 'the stream after the polls spent the budget: refused, not a budget of its own')
})

test('HEAD of the event stream answers its headers at once, not at the code\'s expiry', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const { id } = await create(app)
  const { request } = await import('node:http')
  const answer = await new Promise<{ status?: number, type?: string }>((resolve, reject) => {
    const req = request(`${base}/auth/qr/${id}/events`, { method: 'HEAD' }, (res) => { res.resume(); resolve({ status: res.statusCode, type: res.headers['content-type'] }) })
    req.setTimeout(2_000, () => { req.destroy(new Error('no answer to HEAD within 2 s')) })
    req.on('error', reject).end()
  })
  t.same(answer, { status: 200, type: 'text/event-stream; charset=utf-8' })
})

test('the stream\'s answer carries the rate limit\'s headers, as the gateway\'s other limited routes do', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, config: { RATE_LIMIT_QR_POLL_MAX: 5 } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const { id } = (await app.inject({ method: 'POST', url: '/auth/qr' })).json<{ id: string }>()
  const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const req = get(`${base}/auth/qr/${id}/events`, (res) => { resolve(res.headers); res.destroy() })
    req.on('error', reject)
  })
  t.match(headers, { 'content-type': 'text/event-stream; charset=utf-8', 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '4' })
})

test('a client gone while its stream\'s first state was read leaves nothing behind: no watch polling the store until the code expires', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { ACCESS_CHECK: 'strict', STORE_TIMEOUT_MS: 3000 } })
  const base = new URL(await app.listen({ port: 0, host: '127.0.0.1' }))
  const { id } = await create(app)
  // The watches the route holds, counted as it takes and drops them.
  const { qr } = app.wechatAuthSessions
  const watch = qr.watch
  let watching = 0
  qr.watch = (qrId, listener) => {
    watching++
    const unwatch = watch(qrId, listener)
    return () => { watching--; unwatch() }
  }
  const status = qr.status
  let read = 0
  qr.status = async (qrId) => { try { return await status(qrId) } finally { read++ } }
  const { connect } = await import('node:net')
  // Redis frozen: the request waits on its reads; the client hangs up meanwhile; then Redis answers.
  redis.pause()
  const arrived = new Promise((resolve) => app.server.once('request', resolve))
  const socket = connect(Number(base.port), base.hostname)
  socket.on('error', () => {})
  socket.write(`GET /auth/qr/${id}/events HTTP/1.1\r\nHost: ${base.host}\r\n\r\n`)
  await arrived
  const gone = new Promise((resolve) => socket.once('close', resolve))
  socket.destroy()
  await gone
  await sleep(100)
  redis.resume()
  await until(async () => read >= 1, 'the stream\'s first read, after the client went away', 5000, 20)
  await sleep(100) // the handler goes on from its read
  t.equal(watching, 0, 'no watch left for a client that went away')
  const stream = follow(`${base.origin}/auth/qr/${id}/events`)
  await until(has(stream.events, 'state:pending'), 'the first state', 5000, 20)
  t.equal(watching, 1, 'a client that stays is watched (the server\'s close ends its stream)')
})
