// Redis going down and coming back, seen through HTTP: fast 503s, no hang, no crash, recovery.
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import { bearer, buildApp, login, startRedis, startSim } from './helper.js'

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
