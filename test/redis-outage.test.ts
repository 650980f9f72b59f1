// Redis going down and coming back, seen through HTTP: fast 503s, no hang, no crash, recovery.
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import { keyNames } from '../lib/store/redis-layout.js'
import { userTag } from '../lib/ids.js'
import { bearer, buildApp, login, redisClient, startRedis, startSim } from './helper.js'

test('with Redis down every route answers 503 STORE_UNAVAILABLE fast, and recovers by itself', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { RATE_LIMIT_LOGIN_MAX: 5 } })
  const before = await login(app, 'alice.1')

  await redis.stop()
  const callsBefore = sim.calls.length
  const requests = [
    { method: 'POST' as const, url: '/auth/login', payload: { code: 'alice.2' } },
    { method: 'POST' as const, url: '/auth/refresh', payload: { refreshToken: before.refreshToken } },
    { method: 'GET' as const, url: '/auth/me', headers: bearer(before.accessToken) },
    { method: 'POST' as const, url: '/auth/logout', headers: bearer(before.accessToken) }
  ]
  for (const req of requests) {
    const started = Date.now()
    const res = await app.inject(req)
    t.equal(res.statusCode, 503, `${req.method} ${req.url}`)
    t.equal(res.json().code, 'STORE_UNAVAILABLE', `${req.method} ${req.url}`)
    t.ok(Date.now() - started < 1500, `${req.url} answered within about a second`)
  }
  t.equal(sim.calls.length, callsBefore, 'no login code was sent to WeChat while sessions could not be stored')
  // More logins than the rate limit allows: with its store down the limiter steps aside
  // rather than turning the outage into 500s.
  for (let i = 0; i < 6; i++) {
    t.equal((await app.inject(requests[0] as never)).json().code, 'STORE_UNAVAILABLE')
  }

  await redis.start()
  let status = 0
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = (await app.inject('/health')).statusCode
    if (status !== 200) await sleep(50)
  }
  t.equal(status, 200, 'health recovers')
  const after = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'alice.2' } })
  t.equal(after.statusCode, 200, 'login works again, with the same code that failed during the outage')
})

test('a host client with an offline queue: requests still fail fast while Redis is down', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const { Redis } = await import('ioredis')
  const host = new Redis(redis.url) // ioredis defaults: offline queue on, 20 retries per request
  host.on('error', () => {})
  t.teardown(() => host.disconnect())
  const app = await buildApp(t, { sim, redis: host, config: { STORE_TIMEOUT_MS: 300, RATE_LIMIT_LOGIN_MAX: 5, RATE_LIMIT_REFRESH_MAX: 5 } })
  const p = await login(app, 'amy.1')
  await redis.stop()
  for (const req of [
    { method: 'POST' as const, url: '/auth/login', payload: { code: 'amy.2' } },
    { method: 'POST' as const, url: '/auth/refresh', payload: { refreshToken: p.refreshToken } },
    { method: 'GET' as const, url: '/auth/me', headers: bearer(p.accessToken) }
  ]) {
    const started = Date.now()
    const res = await app.inject(req)
    t.equal(res.json().code, 'STORE_UNAVAILABLE', req.url)
    t.ok(Date.now() - started < 1500, `${req.url} answered in ${Date.now() - started} ms`)
  }
})

test('a Redis error mid-login gives 503, and the session_key stays out of the logs', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const admin = redisClient(t, redis.url)
  const logs: string[] = []
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    logs,
    // Between the code claim and the session write, the user's key becomes a string, so the
    // session script fails with WRONGTYPE. ioredis errors carry the command's arguments,
    // session_key among them: they must not reach a log line or the answer.
    resolveUser: async ({ openid, appid }) => {
      await admin.set(keyNames(redis.prefix).user(userTag(appid, openid)), 'not a hash')
      return { userId: openid }
    }
  })
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'wrongtype.1' } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'STORE_UNAVAILABLE')
  const text = logs.join('\n')
  t.match(text, /WRONGTYPE/, 'the cause is logged')
  const sessionKey = sim.sessionKeyOf('wrongtype') as string
  t.ok(sessionKey.length > 0)
  t.notOk(text.includes(sessionKey), 'but not the session_key')
  t.notOk(res.body.includes(sessionKey))
  t.notMatch(text, /"args"/, 'nor any command arguments')
})

test('with Redis frozen, login and refresh answer 503 within one store deadline, not one per store call', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { STORE_TIMEOUT_MS: 500 } })
  const before = await login(app, 'frost.1')
  redis.pause()
  t.teardown(() => { redis.resume() })
  for (const req of [
    { method: 'POST' as const, url: '/auth/login', payload: { code: 'frost.2' } },
    { method: 'POST' as const, url: '/auth/refresh', payload: { refreshToken: before.refreshToken } }
  ]) {
    const started = Date.now()
    const res = await app.inject(req)
    const took = Date.now() - started
    t.equal(res.statusCode, 503, req.url)
    t.equal(res.json().code, 'STORE_UNAVAILABLE', req.url)
    // One deadline (500 ms) and the sweeper's granularity (a tenth of it), not two deadlines in a row
    // (1000 ms): the margin between is a loaded machine's.
    t.ok(took < 950, `${req.url} answered in ${took} ms`)
  }
  redis.resume()
  const retried = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: before.refreshToken } })
  t.equal(retried.statusCode, 200, 'the refresh token still works: nothing was changed')
})
