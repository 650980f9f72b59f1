// fastify-wechat-auth/client logging in, against a real gateway (Redis, the WeChat simulator) through a
// `wx` stand-in that makes real HTTP requests: one login for many callers, tokens that survive a
// restart, one re-login for an ended session, and a bound on logins instead of a loop.
import { test } from 'tap'
import { WechatAuthError, createWechatAuthClient, type LoggedOut } from '../../client/index.js'
import { bearer } from '../helper.js'
import { fakeTime, gateway, standIn } from './stand-in.js'

const orders = { url: '/api/orders' }
const codeOf = (r: PromiseSettledResult<unknown>): string => r.status === 'rejected' ? (r.reason as WechatAuthError).code : 'ok'

test('cold start: 20 concurrent requests make exactly one wx.login() and one /auth/login, then all succeed', async (t) => {
  const { baseUrl, sim } = await gateway(t)
  const mp = standIn('alice')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const loggedIn: string[] = []
  client.on('loggedIn', (s) => loggedIn.push(s.openid))
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await client.request<{ openid: string }>(orders)))
  t.same(answers.map((a) => a.statusCode), Array(20).fill(200))
  t.ok(answers.every((a) => a.data.openid === sim.openidOf('alice')), 'each as alice')
  t.equal(mp.logins, 1, 'one wx.login()')
  t.equal(mp.calls['POST /auth/login'], 1, 'one /auth/login')
  t.equal(mp.calls['GET /api/orders'], 20)
  t.same(loggedIn, [sim.openidOf('alice')], 'one loggedIn event')
  t.equal((mp.storage.get('wechat-auth') as { accessToken: string }).accessToken, client.session()?.accessToken, 'the tokens are in storage')

  const again = await Promise.all([client.ensureLogin(), client.ensureLogin()])
  t.equal(again[0], again[1], 'ensureLogin shares the session')
  t.equal(mp.logins, 1, 'a live session needs no login')
})

test('a restart of the mini program: the tokens come back from storage, no login', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('bob')
  await createWechatAuthClient({ platform: mp.wx, baseUrl }).ensureLogin()
  const restarted = createWechatAuthClient({ platform: mp.wx, baseUrl })
  t.equal((await restarted.request(orders)).statusCode, 200)
  t.equal(mp.logins, 1, 'still the one login of the first run')
  mp.storage.set('wechat-auth', 'garbage')
  const broken = createWechatAuthClient({ platform: mp.wx, baseUrl })
  t.equal(broken.session(), null, 'unreadable storage is no session')
  t.equal((await broken.request(orders)).statusCode, 200, 'it logs in')
  t.equal(mp.logins, 2)
})

test('a revoked session: one re-login for 20 concurrent requests, then all succeed', async (t) => {
  const { app, baseUrl } = await gateway(t)
  const mp = standIn('carol')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const old = await client.ensureLogin()
  const ended: LoggedOut[] = []
  client.on('loggedOut', (e) => ended.push(e))
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(old.accessToken) })
  t.equal(logout.statusCode, 204, 'the session is ended behind the client\'s back')

  const answers = await Promise.allSettled(Array.from({ length: 20 }, async () => await client.request(orders)))
  t.same(answers.map(codeOf), Array(20).fill('ok'))
  t.equal(mp.logins, 2, 'one more wx.login()')
  t.equal(mp.calls['POST /auth/login'], 2, 'one more /auth/login')
  t.same(ended, [{ reason: 'AUTH_TOKEN_REVOKED' }], 'one loggedOut event, with the code')
  t.not(client.session()?.accessToken, old.accessToken)
})

test('a login that always fails: an error after one more code, and after 3 logins a minute no more tries', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('invalid')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep })
  const first = await Promise.allSettled(Array.from({ length: 20 }, async () => await client.request(orders)))
  t.same(first.map(codeOf), Array(20).fill('WX_CODE_INVALID'), 'every caller gets the code')
  t.equal(mp.logins, 2, 'one login in flight for all: its code, and one more new code')
  t.equal(mp.calls['POST /auth/login'], 2)

  const codes: string[] = []
  for (let i = 0; i < 10; i++) codes.push(await client.request(orders).then(() => 'ok', (err: WechatAuthError) => err.code))
  t.same(codes, ['WX_CODE_INVALID', 'WX_CODE_INVALID', ...Array(8).fill('CLIENT_LOGIN_LIMIT')])
  t.equal(mp.logins, 6, 'three logins of two codes each, then none')
  t.equal(mp.calls['POST /auth/login'], 6)
  t.equal(mp.calls['GET /api/orders'], undefined, 'no request went out without a token')
  const limited = await client.ensureLogin().catch((err: WechatAuthError) => err)
  t.match(limited, { code: 'CLIENT_LOGIN_LIMIT', retryAfter: 60 })

  time.clock.at += 60_000
  mp.user = 'alice'
  t.equal((await client.request(orders)).statusCode, 200, 'a minute later it logs in again')
})

test('a gateway that ends the session at every request: one re-login per request, then the bound', async (t) => {
  const { baseUrl } = await gateway(t, {
    routes: (app) => app.get('/api/kick-me', { onRequest: app.authenticate }, async (request) => {
      const user = request.wechatAuthUser as { aud: string, sub: string, sid: string }
      await app.wechatAuthSessions.kick({ appid: user.aud, sub: user.sub }, { sid: user.sid, reason: 'test' })
      return { kicked: true }
    })
  })
  const mp = standIn('dave')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const ended: LoggedOut[] = []
  client.on('loggedOut', (e) => ended.push(e))
  const codes: string[] = []
  for (let i = 0; i < 5; i++) codes.push(await client.request({ url: '/api/kick-me' }).then(() => 'ok', (err: WechatAuthError) => err.code))
  t.same(codes, ['ok', 'ok', 'ok', 'CLIENT_LOGIN_LIMIT', 'CLIENT_LOGIN_LIMIT'])
  t.equal(mp.logins, 3, 'the cold start and two re-logins')
  t.equal(mp.calls['GET /api/kick-me'], 6, 'the first; the kicked one and its retry, twice; the kicked one whose login was refused; then none')
  t.match(ended[0], { reason: 'AUTH_SESSION_KICKED', detail: { reason: 'test' } }, 'the app is told why')
})

test('a banned account: 403 AUTH_ACCOUNT_BANNED with until, the session forgotten, no retry', async (t) => {
  const { app, sim, baseUrl } = await gateway(t)
  const mp = standIn('erin')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  await client.ensureLogin()
  const until = new Date(Date.now() + 3_600_000)
  await app.wechatAuthSessions.ban({ appid: sim.appid, openid: sim.openidOf('erin') }, { reason: 'fraud', until })
  const ended: LoggedOut[] = []
  client.on('loggedOut', (e) => ended.push(e))
  const err = await client.request(orders).catch((e: WechatAuthError) => e)
  t.ok(err instanceof WechatAuthError)
  t.match(err, { code: 'AUTH_ACCOUNT_BANNED', statusCode: 403, until: until.toISOString(), detail: { reason: 'fraud' } })
  t.equal(mp.calls['GET /api/orders'], 1, 'not retried')
  t.equal(mp.logins, 1, 'no re-login')
  t.equal(client.session(), null)
  t.same(ended.map((e) => e.reason), ['AUTH_ACCOUNT_BANNED'])
})

test('options passed as undefined keep their defaults', async (t) => {
  const { baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL: 30 } })
  const mp = standIn('frank')
  const time = fakeTime()
  const unset = { prefix: undefined, storageKey: undefined, refreshAhead: undefined, maxLoginsPerMinute: undefined, retries: undefined, maxRetryAfter: undefined, refreshTries: undefined, refreshTimeout: undefined, reloginOn: undefined, random: undefined }
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep, ...unset })
  t.equal((await client.request(orders)).statusCode, 200, 'prefix /auth')
  t.ok(mp.storage.has('wechat-auth'), 'storageKey wechat-auth')
  time.clock.at += 25_000
  await client.request(orders)
  t.equal(mp.calls['POST /auth/refresh'], 1, 'refreshAhead 0.2')
  time.clock.at += 31_000
  mp.drop('POST /auth/refresh', 5)
  t.match(await client.request(orders).catch((e: WechatAuthError) => e), { code: 'CLIENT_NETWORK' })
  t.equal(mp.calls['POST /auth/refresh'], 4, 'refreshTries 3')

  const failing = createWechatAuthClient({ platform: standIn('invalid').wx, baseUrl, now: undefined, sleep: undefined, ...unset })
  const codes: string[] = []
  for (let i = 0; i < 4; i++) codes.push(await failing.ensureLogin().then(() => 'ok', (err: WechatAuthError) => err.code))
  t.same(codes, ['WX_CODE_INVALID', 'WX_CODE_INVALID', 'WX_CODE_INVALID', 'CLIENT_LOGIN_LIMIT'], 'maxLoginsPerMinute 3')
})

test('a login whose answer a proxy replaced with 503: sent again; the gateway refuses the spent code, and a new one logs in', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('grace')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep, random: () => 0.5 })
  mp.drop('POST /auth/login', 1, { statusCode: 503, data: { statusCode: 503, code: 'STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'down' } })
  t.equal((await client.request(orders)).statusCode, 200)
  t.equal(mp.calls['POST /auth/login'], 3, 'the hidden login, its retry (WX_CODE_USED: never two sessions of one code), a new code')
  t.equal(mp.logins, 2)
})
