// POST /auth/tickets and /auth/tickets/exchange: one-time tickets, on a real Redis and the simulator.
import type { FastifyInstance } from 'fastify'
import { test } from 'tap'
import { StoreUnavailableError } from '../../lib/errors.js'
import { bearer, buildApp, login, me, redisClient, refresh, startRedis, startSim, type Pair } from '../helper.js'

const issue = async (app: FastifyInstance, token: string, payload?: Record<string, unknown>) =>
  await app.inject({ method: 'POST', url: '/auth/tickets', headers: bearer(token), ...(payload === undefined ? {} : { payload }) })
const exchange = async (app: FastifyInstance, payload: Record<string, unknown>) =>
  await app.inject({ method: 'POST', url: '/auth/tickets/exchange', payload, headers: { 'user-agent': 'WebView/1.0' } })
const ticketOf = async (app: FastifyInstance, token: string, deviceType?: string): Promise<string> =>
  (await issue(app, token, deviceType === undefined ? undefined : { deviceType })).json<{ ticket: string }>().ticket

test('one-time tickets', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })

  t.test('a ticket logs the same user in on the web: a new `web` session, the same openid and session_key', async (t) => {
    const mp = await login(app, 'alice.t1')
    const res = await issue(app, mp.accessToken)
    t.equal(res.statusCode, 200)
    const body = res.json<{ ticket: string, deviceType: string, expiresIn: number }>()
    t.match(body, { deviceType: 'web', expiresIn: 300 })
    t.ok(Buffer.from(body.ticket, 'base64url').length >= 16, 'at least 128 random bits')
    const web = await exchange(app, { ticket: body.ticket, deviceName: 'laptop' })
    t.equal(web.statusCode, 200)
    const pair = web.json<Pair>()
    t.equal(pair.openid, mp.openid)
    t.equal((await me(app, pair.accessToken)).statusCode, 200)
    const sessions = (await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(pair.accessToken) })).json<{ sessions: Array<{ deviceType: string, deviceName: string, userAgent: string, current: boolean }> }>().sessions
    t.match(sessions.find((s) => s.current), { deviceType: 'web', deviceName: 'laptop', userAgent: 'WebView/1.0' })
    t.equal(sessions.length, 2, 'the mini program\'s session lives on')
    const { encryptedData, iv } = sim.encryptFor('alice', { nickName: 'Alice' })
    const decrypted = await app.inject({ method: 'POST', url: '/auth/wechat/decrypt', headers: bearer(pair.accessToken), payload: { encryptedData, iv } })
    t.equal(decrypted.statusCode, 200, 'WeChat data routes work: the session_key is shared')
    const again = await exchange(app, { ticket: body.ticket })
    t.equal(again.statusCode, 401)
    t.equal(again.json().code, 'AUTH_TICKET_INVALID', 'a second exchange is refused')
  })

  t.test('refusals: unknown ticket, another device type (spent), unknown type, no token, the issuing session ended', async (t) => {
    const mp = await login(app, 'bob.t1')
    const unknown = await exchange(app, { ticket: 'A'.repeat(43) })
    t.same([unknown.statusCode, unknown.json().code], [401, 'AUTH_TICKET_INVALID'])
    const forApp = await ticketOf(app, mp.accessToken, 'app')
    const wrong = await exchange(app, { ticket: forApp, deviceType: 'web' })
    t.same([wrong.statusCode, wrong.json().code, wrong.json().detail], [403, 'AUTH_TICKET_AUDIENCE_MISMATCH', { deviceType: 'app' }])
    const spent = await exchange(app, { ticket: forApp, deviceType: 'app' })
    t.same([spent.statusCode, spent.json().code], [401, 'AUTH_TICKET_INVALID'], 'spent by the refused exchange')
    const badType = await issue(app, mp.accessToken, { deviceType: 'tv' })
    t.same([badType.statusCode, badType.json().code], [400, 'AUTH_DEVICE_TYPE_UNKNOWN'])
    const anonymous = await app.inject({ method: 'POST', url: '/auth/tickets' })
    t.same([anonymous.statusCode, anonymous.json().code], [401, 'AUTH_TOKEN_MISSING'])
    const pending = await ticketOf(app, mp.accessToken)
    await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(mp.accessToken) })
    const orphan = await exchange(app, { ticket: pending })
    t.same([orphan.statusCode, orphan.json().code], [401, 'AUTH_TICKET_INVALID'], 'its session ended: no new one')
    const bad = await exchange(app, { ticket: 'not a ticket!' })
    t.same([bad.statusCode, bad.json().code], [400, 'FST_ERR_VALIDATION'])
  })

  t.test('an exchange naming a type not in DEVICE_TYPES is refused as at issue, and leaves the ticket unspent', async (t) => {
    const mp = await login(app, 'gina.t1')
    const ticket = await ticketOf(app, mp.accessToken)
    const typo = await exchange(app, { ticket, deviceType: 'zz' })
    t.same([typo.statusCode, typo.json().code], [400, 'AUTH_DEVICE_TYPE_UNKNOWN'])
    const retry = await exchange(app, { ticket, deviceType: 'web' })
    t.equal(retry.statusCode, 200, 'the ticket still works')
    t.equal(retry.json<Pair>().openid, mp.openid)
  })

  t.test('a device name with control or bidi characters is refused before the ticket is taken; a CJK and emoji one is listed as given', async (t) => {
    const mp = await login(app, 'hana.t1')
    const ticket = await ticketOf(app, mp.accessToken)
    for (const deviceName of ['evil\u202egpj.exe', 'nul\u0000', 'esc\u001b[2J', 'iso\u2067x', 'lone \udbff']) {
      const res = await exchange(app, { ticket, deviceName })
      t.same([res.statusCode, res.json().code], [400, 'FST_ERR_VALIDATION'], JSON.stringify(deviceName))
    }
    const web = await exchange(app, { ticket, deviceName: '办公室电脑💻' })
    t.equal(web.statusCode, 200, 'the ticket was not spent by the refusals')
    const sessions = (await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(web.json<Pair>().accessToken) })).json<{ sessions: Array<{ deviceName: string, current: boolean }> }>().sessions
    t.equal(sessions.find((s) => s.current)?.deviceName, '办公室电脑💻')
  })

  t.test('issue and exchange refuse a query string, which they would otherwise ignore', async (t) => {
    const mp = await login(app, 'ivo.t1')
    const issued = await app.inject({ method: 'POST', url: '/auth/tickets?deviceType=app', headers: bearer(mp.accessToken) })
    t.same([issued.statusCode, issued.json().code], [400, 'FST_ERR_VALIDATION'])
    const ticket = await ticketOf(app, mp.accessToken)
    const exchanged = await app.inject({ method: 'POST', url: `/auth/tickets/exchange?ticket=${ticket}`, payload: { ticket } })
    t.same([exchanged.statusCode, exchanged.json().code], [400, 'FST_ERR_VALIDATION'])
    t.equal((await exchange(app, { ticket })).statusCode, 200, 'the ticket was not spent by the refusal')
  })

  t.test('the session rules apply: a banned user gets no session', async (t) => {
    const mp = await login(app, 'carol.t1')
    const ticket = await ticketOf(app, mp.accessToken)
    const sub = (await me(app, mp.accessToken)).json<{ openid: string }>().openid
    await app.wechatAuthSessions.ban({ appid: app.wechat.appid, sub }, { reason: 'fraud' })
    const res = await exchange(app, { ticket })
    t.same([res.statusCode, res.json().code], [401, 'AUTH_TICKET_INVALID'], 'the ban ended the issuing session')
  })
})

test('the session rules apply to ticket sessions: an exclusive `web` type replaces the earlier web session', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { EXCLUSIVE_DEVICE_TYPES: 'web' } })
  const mp = await login(app, 'dave.t1')
  const first = (await exchange(app, { ticket: await ticketOf(app, mp.accessToken) })).json<Pair>()
  const second = await exchange(app, { ticket: await ticketOf(app, mp.accessToken) })
  t.equal(second.statusCode, 200)
  const old = await me(app, first.accessToken)
  t.same([old.statusCode, old.json().code], [401, 'AUTH_SESSION_REPLACED'])
  t.equal((await me(app, mp.accessToken)).statusCode, 200, 'the mini program\'s session is another type')
})

test('a refusal the user can fix (device in use), or the store failing while the session opens, leaves the ticket unspent', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { EXCLUSIVE_DEVICE_TYPES: 'web', EXCLUSIVE_MODE: 'refuse' } })
  const mp = await login(app, 'zed.t1')
  const first = (await exchange(app, { ticket: await ticketOf(app, mp.accessToken) })).json<Pair>()
  const ticket = await ticketOf(app, mp.accessToken)
  const inUse = await exchange(app, { ticket })
  t.same([inUse.statusCode, inUse.json().code], [403, 'AUTH_DEVICE_IN_USE'], 'the user\'s web session lives')
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(first.accessToken) })

  // The store fails as the session is opened (after the ticket was taken).
  const store = app.wechatAuthStore
  const createSession = store.createSession
  store.createSession = async () => { store.createSession = createSession; throw new StoreUnavailableError() }
  t.teardown(() => { store.createSession = createSession })
  const down = await exchange(app, { ticket })
  t.same([down.statusCode, down.json().code], [503, 'STORE_UNAVAILABLE'])
  const [key, ...others] = await redisClient(t, redis.url).keys(`${redis.prefix}tk:*`)
  t.same(others, [], 'one ticket kept')
  const ttl = await redisClient(t, redis.url).pttl(key as string)
  t.ok(ttl > 0 && ttl <= 300_000, `put back with what was left of its lifetime, not more (${ttl} ms)`)

  const retry = await exchange(app, { ticket })
  t.equal(retry.statusCode, 200, 'the retry, once the other web session signed out and the store answers, works')
  t.equal(retry.json<Pair>().openid, mp.openid)
  const again = await exchange(app, { ticket })
  t.same([again.statusCode, again.json().code], [401, 'AUTH_TICKET_INVALID'], 'and the ticket is spent by the session it gave')
})

test('50 concurrent exchanges of one ticket on 2 instances sharing one Redis: exactly one 200', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const apps = await Promise.all([0, 1].map(async () => await buildApp(t, { sim, redisServer: redis })))
  const [a] = apps as [FastifyInstance, FastifyInstance]
  const mp = await login(a, 'erin.t1')
  const ticket = await ticketOf(a, mp.accessToken)
  const answers = await Promise.all(Array.from({ length: 50 }, async (_, i) => await exchange(apps[i % 2] as FastifyInstance, { ticket })))
  const outcomes = answers.map((r) => `${r.statusCode} ${r.statusCode === 200 ? '' : String(r.json().code)}`)
  t.equal(outcomes.filter((o) => o.startsWith('200')).length, 1, 'exactly one exchange succeeds')
  t.same([...new Set(outcomes.filter((o) => !o.startsWith('200')))], ['401 AUTH_TICKET_INVALID'], 'the 49 others are AUTH_TICKET_INVALID')
})

test('no ticket in any log line, at trace level, across success and refusals', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const logs: string[] = []
  const app = await buildApp(t, { sim, redisServer: redis, logs })
  const mp = await login(app, 'frank.t1')
  const tickets = [await ticketOf(app, mp.accessToken), await ticketOf(app, mp.accessToken, 'app')]
  await exchange(app, { ticket: tickets[0] as string })
  await exchange(app, { ticket: tickets[0] as string })
  await exchange(app, { ticket: tickets[1] as string, deviceType: 'web' })
  await redis.stop()
  await exchange(app, { ticket: tickets[1] as string })
  const text = logs.join('\n')
  t.ok(logs.length > 10, `captured ${logs.length} lines`)
  t.match(text, /STORE_UNAVAILABLE/, 'the outage was logged')
  for (const ticket of tickets) t.notOk(text.includes(ticket), 'no ticket in the logs')
})

for (const kind of ['redis', 'memory'] as const) {
  test(`${kind}: a session opened with a ticket ends at its issuer's SESSION_MAX_AGE: handing a session on never extends it`, async (t) => {
    const sim = await startSim(t)
    const redis = kind === 'redis' ? { redisServer: await startRedis(t) } : {}
    const app = await buildApp(t, { sim, ...redis, config: { SESSION_MAX_AGE: 60, REFRESH_TOKEN_TTL: 60, ACCESS_TOKEN_TTL: 30 } })
    const phone = await login(app, 'aged.1')
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    const web = await exchange(app, { ticket: await ticketOf(app, phone.accessToken) })
    t.equal(web.statusCode, 200)
    t.ok(web.json().refreshExpiresIn <= 58, `the new session has what its issuer has left (${String(web.json().refreshExpiresIn)} s), not 60`)
    const next = await refresh(app, web.json().refreshToken)
    t.equal(next.statusCode, 200)
    t.ok(next.json().refreshExpiresIn <= 58, `and keeps it through a refresh (${String(next.json().refreshExpiresIn)} s)`)
    // A ticket of that session hands on the same deadline again.
    const third = await exchange(app, { ticket: await ticketOf(app, next.json().accessToken, 'web') })
    t.ok(third.json().refreshExpiresIn <= 58, `a ticket of it too (${String(third.json().refreshExpiresIn)} s)`)
    // A step-up rewrites what it keeps with the deadline: the deadline stays.
    const stepped = await app.inject({ method: 'POST', url: '/auth/step-up', headers: bearer(third.json().accessToken), payload: { code: 'aged.2' } })
    t.equal(stepped.statusCode, 200)
    const after = await refresh(app, third.json().refreshToken)
    t.ok(after.json().refreshExpiresIn <= 58, `and through a step-up (${String(after.json().refreshExpiresIn)} s)`)
  })
}
