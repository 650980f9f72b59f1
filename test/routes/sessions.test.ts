import type { InjectOptions } from 'fastify'
import { test } from 'tap'
import { bearer, buildApp, login, me, startRedis, startSim } from '../helper.js'

test('GET /auth/sessions lists the caller\'s devices, the current one marked, never a secret', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  const phone = (await app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { 'user-agent': 'Mozilla/5.0 (iPhone) MicroMessenger/8.0.43' },
    payload: { code: 'devon.1', deviceName: 'iPhone 15 Pro' }
  })).json()
  const web = (await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'devon.2', deviceType: 'web' } })).json()
  const res = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(phone.accessToken) })
  t.equal(res.statusCode, 200)
  const { sessions } = res.json()
  t.equal(sessions.length, 2)
  const mine = sessions.find((s: { current: boolean }) => s.current)
  t.match(mine, { deviceType: 'mp', deviceName: 'iPhone 15 Pro', ip: '127.0.0.1', userAgent: /^Mozilla\/5\.0/, lastRefreshAt: null, createdAt: /^\d{4}-\d\d-\d\dT/, expiresAt: /^\d{4}-/ })
  t.equal(mine.sessionId, (await me(app, phone.accessToken)).json().sessionId)
  t.match(sessions.find((s: { current: boolean }) => !s.current), { deviceType: 'web', deviceName: '', current: false })
  for (const secret of [phone.refreshToken, web.refreshToken, phone.accessToken, sim.sessionKeyOf('devon') ?? 'no session_key']) {
    t.notOk(res.body.includes(secret), 'no token or session_key in the list')
  }
  t.equal((await app.inject({ method: 'GET', url: '/auth/sessions' })).json().code, 'AUTH_TOKEN_MISSING')
})

test('DELETE /auth/sessions/:sid signs out one of the caller\'s devices; another user\'s is not found', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  const phone = await login(app, 'erin.1')
  const tablet = await login(app, 'erin.2')
  const other = await login(app, 'frank.1')
  const sidOf = async (token: string): Promise<string> => (await me(app, token)).json().sessionId
  const del = async (token: string, sid: string) => await app.inject({ method: 'DELETE', url: `/auth/sessions/${sid}`, headers: bearer(token) })
  const foreign = await del(phone.accessToken, await sidOf(other.accessToken))
  t.equal(foreign.statusCode, 404)
  t.equal(foreign.json().code, 'AUTH_SESSION_NOT_FOUND')
  t.equal((await me(app, other.accessToken)).statusCode, 200, 'the other user\'s session lives on')
  const bad = await del(phone.accessToken, 'not-a-session-id')
  t.equal(bad.json().code, 'FST_ERR_VALIDATION')
  const ended = await del(phone.accessToken, await sidOf(tablet.accessToken))
  t.equal(ended.statusCode, 204)
  const after = await me(app, tablet.accessToken)
  t.equal(after.statusCode, 401)
  t.equal(after.json().code, 'AUTH_TOKEN_REVOKED')
  t.equal((await me(app, phone.accessToken)).statusCode, 200)
})

test('GET /auth/me, GET /auth/sessions and DELETE /auth/sessions/:sid take no query and no body: one is refused with 400, not ignored', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  const phone = await login(app, 'ivy.1')
  const others = [await login(app, 'ivy.2'), await login(app, 'ivy.3'), await login(app, 'ivy.4')]
  const [tablet, laptop, watch] = await Promise.all(others.map(async (p) => (await me(app, p.accessToken)).json<{ sessionId: string }>().sessionId))
  const auth = bearer(phone.accessToken)
  const cases: Array<[string, InjectOptions]> = [
    ['me, a parameter twice', { method: 'GET', url: '/auth/me?x=1&x=2', headers: auth }],
    ['me, a parameter without a value', { method: 'GET', url: '/auth/me?x', headers: auth }],
    ['sessions, a parameter', { method: 'GET', url: '/auth/sessions?all=true', headers: auth }],
    ['DELETE, a body', { method: 'DELETE', url: `/auth/sessions/${tablet}`, headers: auth, payload: { a: 1 } }],
    ['DELETE, an array body', { method: 'DELETE', url: `/auth/sessions/${tablet}`, headers: { ...auth, 'content-type': 'application/json' }, payload: '[]' }],
    ['DELETE, a query', { method: 'DELETE', url: `/auth/sessions/${tablet}?force=1`, headers: auth }]
  ]
  for (const [what, options] of cases) {
    const res = await app.inject(options)
    t.same([res.statusCode, res.json().code], [400, 'FST_ERR_VALIDATION'], what)
  }
  t.equal((await app.inject({ method: 'HEAD', url: '/auth/me?x=1', headers: auth })).statusCode, 400, 'HEAD as GET')
  t.equal((await me(app, others[0]?.accessToken ?? '')).statusCode, 200, 'the session the refused DELETEs named lives on')

  // No body, an empty JSON body and {} all mean "none".
  const del = async (sid: string, extra: Partial<InjectOptions>) => (await app.inject({ method: 'DELETE', url: `/auth/sessions/${sid}`, ...extra, headers: { ...auth, ...extra.headers } })).statusCode
  t.equal(await del(tablet as string, { payload: {} }), 204, '{}')
  t.equal(await del(laptop as string, { headers: { 'content-type': 'application/json' }, payload: '' }), 204, 'an empty JSON body')
  t.equal(await del(watch as string, {}), 204, 'no body')
  t.equal((await me(app, phone.accessToken)).statusCode, 200)
})

test('an exclusive device type over HTTP: the replaced phone is told which device type took over, and when', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { EXCLUSIVE_DEVICE_TYPES: 'mp' } })
  const first = await login(app, 'gina.1')
  await login(app, 'gina.2')
  const res = await me(app, first.accessToken)
  t.equal(res.statusCode, 401)
  t.match(res.json(), { code: 'AUTH_SESSION_REPLACED', detail: { deviceType: 'mp', cause: 'exclusive-device', endedAt: /^\d{4}-/ } })
  const refused = await buildApp(t, { sim, redisServer: redis, config: { EXCLUSIVE_DEVICE_TYPES: 'mp', EXCLUSIVE_MODE: 'refuse' } })
  const again = await refused.inject({ method: 'POST', url: '/auth/login', payload: { code: 'gina.3' } })
  t.equal(again.statusCode, 403)
  t.match(again.json(), { code: 'AUTH_DEVICE_IN_USE', detail: { deviceType: 'mp' } })
  const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'gina.4', deviceType: 'tv' } })
  t.equal(unknown.statusCode, 400)
  t.equal(unknown.json().code, 'AUTH_DEVICE_TYPE_UNKNOWN')
})
