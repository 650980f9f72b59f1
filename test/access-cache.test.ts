// ACCESS_CHECK across gateway instances sharing one Redis, through HTTP: instance B answers a token it
// has seen without a Redis command (tracked), refuses it within a bound once instance A
// ended it (logout, kick, ban), answers 503 while Redis is down and never a remembered 200; strict (a
// switch; tracked is the default) reads Redis on every request.
import type { FastifyInstance } from 'fastify'
import { test, type Test } from 'tap'
import { bearer, buildApp, commandStats, login, me, redisClient, startRedis, startSim, type RedisServer } from './helper.js'

/** How many HMGETs Redis ran (INFO commandstats): the server is the test's own. */
async function hmgets (t: Test, redis: RedisServer): Promise<number> {
  return (await commandStats(redisClient(t, redis.url), 'hmget')).calls
}

/** Requests /auth/me on `app` until it is refused; its answer and how long after the call it came (ms). */
async function untilRefused (app: FastifyInstance, token: string, withinMs: number): Promise<{ ms: number, status: number, code: string | undefined }> {
  const started = performance.now()
  for (;;) {
    const res = await me(app, token)
    const ms = performance.now() - started
    if (res.statusCode !== 200 || ms > withinMs) return { ms, status: res.statusCode, code: res.json().code }
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** A writing (strict) and B reading (tracked unless `config` says otherwise). */
async function twoInstances (t: Test, redis: RedisServer, config: Record<string, unknown> = {}): Promise<[FastifyInstance, FastifyInstance]> {
  const sim = await startSim(t)
  const a = await buildApp(t, { sim, redisServer: redis, config: { ACCESS_CHECK: 'strict' } })
  const b = await buildApp(t, { sim, redisServer: redis, config: { ACCESS_CHECK: 'tracked', ...config } })
  return [a, b]
}

test('tracked: B answers a token it has seen with no Redis command', async (t) => {
  const redis = await startRedis(t, { own: true })
  const [a, b] = await twoInstances(t, redis)
  const pair = await login(a, 'ann.1')
  t.equal((await me(b, pair.accessToken)).statusCode, 200)
  const before = await hmgets(t, redis)
  for (let i = 0; i < 20; i++) t.equal((await me(b, pair.accessToken)).statusCode, 200)
  t.equal(await hmgets(t, redis), before, '20 requests, no HMGET')
})

test('strict: one HMGET per request', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const [a, b] = await Promise.all([0, 1].map(async () => await buildApp(t, { sim, redisServer: redis, config: { ACCESS_CHECK: 'strict' } }))) as [FastifyInstance, FastifyInstance]
  const pair = await login(a, 'sam.1')
  t.equal((await me(b, pair.accessToken)).statusCode, 200)
  const before = await hmgets(t, redis)
  for (let i = 0; i < 20; i++) t.equal((await me(b, pair.accessToken)).statusCode, 200)
  t.equal(await hmgets(t, redis), before + 20, '20 requests, 20 HMGETs')
})

test('a logout, kick or ban on A is refused by B within 100 ms, with its code', async (t) => {
  const redis = await startRedis(t)
  const [a, b] = await twoInstances(t, redis)
  const endings: Array<[string, (token: string, openid: string) => Promise<unknown>, number, string]> = [
    ['logout', async (token) => await a.inject({ method: 'POST', url: '/auth/logout', headers: bearer(token) }), 401, 'AUTH_TOKEN_REVOKED'],
    ['kick', async (_token, openid) => await a.wechatAuthSessions.kick({ appid: a.wechat.appid, sub: openid }, { reason: 'fraud' }), 401, 'AUTH_SESSION_KICKED'],
    ['ban', async (_token, openid) => await a.wechatAuthSessions.ban({ appid: a.wechat.appid, sub: openid }, { reason: 'spam' }), 403, 'AUTH_ACCOUNT_BANNED']
  ]
  const delays: number[] = []
  for (let i = 0; i < 20; i++) {
    for (const [name, end, status, code] of endings) {
      const pair = await login(a, `${name}${i}.1`)
      await me(b, pair.accessToken)
      t.equal((await me(b, pair.accessToken)).statusCode, 200, 'remembered by B')
      await end(pair.accessToken, pair.openid)
      const refused = await untilRefused(b, pair.accessToken, 100)
      delays.push(refused.ms)
      if (refused.status !== status || refused.code !== code) t.fail(`${name} ${i}: ${refused.status} ${String(refused.code)} after ${refused.ms} ms`)
    }
  }
  delays.sort((x, y) => x - y)
  t.ok((delays.at(-1) as number) < 100, `60 endings, each refused by B within 100 ms (median ${delays[30]?.toFixed(2)} ms, max ${delays.at(-1)?.toFixed(2)} ms)`)
})

test('Redis down: B answers 503 STORE_UNAVAILABLE for a token it remembered, and after Redis returns empty, 401', async (t) => {
  const redis = await startRedis(t, { own: true })
  const [a, b] = await twoInstances(t, redis, { STORE_TIMEOUT_MS: 300 })
  const pair = await login(a, 'ola.1')
  await me(b, pair.accessToken)
  t.equal((await me(b, pair.accessToken)).statusCode, 200)
  await redis.stop()
  // Until the connection's close arrives (an event-loop turn or so) B cannot know; from then on, 503 only.
  let down = await me(b, pair.accessToken)
  const closeBy = Date.now() + 500
  while (down.statusCode === 200 && Date.now() < closeBy) {
    await new Promise((resolve) => setImmediate(resolve))
    down = await me(b, pair.accessToken)
  }
  for (let i = 0; i < 5; i++) {
    down = await me(b, pair.accessToken)
    t.equal(down.statusCode, 503)
    t.equal(down.json().code, 'STORE_UNAVAILABLE', 'never a remembered 200')
  }
  await redis.start()
  let res = down
  const deadline = Date.now() + 10_000
  while (res.statusCode === 503 && Date.now() < deadline) {
    res = await me(b, pair.accessToken)
    if (res.statusCode === 503) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(res.statusCode, 401, 'the session went with the data')
  t.equal(res.json().code, 'AUTH_TOKEN_REVOKED')
})

test('the boot says which check runs: tracked by default on REDIS_URL, strict when asked, strict (and why) on an ioredis client', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const ready = (logs: string[]): Record<string, unknown> => JSON.parse(logs.find((l) => l.includes('session store ready')) as string)
  const plain: string[] = []
  await buildApp(t, { sim, redisServer: redis, logs: plain })
  t.match(ready(plain), { level: 20, accessCheck: 'tracked' })
  const strict: string[] = []
  await buildApp(t, { sim, redisServer: redis, logs: strict, config: { ACCESS_CHECK: 'strict' } })
  t.match(ready(strict), { level: 20, accessCheck: 'strict' })
  const host: string[] = []
  await buildApp(t, { sim, redis: redisClient(t, redis.url), config: { REDIS_KEY_PREFIX: redis.prefix, ACCESS_CHECK: 'tracked' }, logs: host })
  t.match(ready(host), { level: 20, accessCheck: 'strict', strictBecause: /ioredis/ })
  t.notOk(host.some((l) => l.includes('"level":40') && l.includes('ACCESS_CHECK')), 'no warning')
})
