// fastify-wechat-auth/client logging out, against a real gateway: an expired access token is refreshed
// first so the session really ends there, a logout({ allDevices }) the gateway did not confirm
// rejects, the tokens forgotten all the same, and a request in flight then does not log in again.
import { test } from 'tap'
import { createWechatAuthClient, type LoggedOut, type WechatAuthError } from '../../client/index.js'
import { bearer } from '../helper.js'
import { expiredCopy, fakeTime, gateway, standIn } from './stand-in.js'

const ACCESS_TOKEN_TTL = 30

test('logout with an access token the gateway finds expired: refreshed, then every session ended at the gateway', async (t) => {
  const { app, baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const phone = standIn('alice')
  const live = await createWechatAuthClient({ platform: phone.wx, baseUrl }).ensureLogin()
  const tablet = await createWechatAuthClient({ platform: standIn('alice').wx, baseUrl }).ensureLogin()
  // Expired at the gateway while the device's clock says it has time left (a mini program asleep in the background).
  phone.storage.set('wechat-auth', { ...live, accessToken: expiredCopy(live.accessToken) })
  const client = createWechatAuthClient({ platform: phone.wx, baseUrl })
  const ended: LoggedOut[] = []
  client.on('loggedOut', (e) => ended.push(e))

  await client.logout({ allDevices: true })
  t.equal(phone.calls['POST /auth/logout'], 2, 'refused as expired, then sent again with the refreshed token')
  t.equal(phone.calls['POST /auth/refresh'], 1)
  t.same(ended, [{ reason: 'logout' }])
  t.equal(client.session(), null)
  t.equal(phone.storage.has('wechat-auth'), false)
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: live.refreshToken } })
  t.equal(refresh.statusCode, 401, `the phone's refresh token is dead (${String(refresh.json().code)})`)
  t.equal((await app.inject({ url: '/auth/me', headers: bearer(tablet.accessToken) })).json().code, 'AUTH_TOKEN_REVOKED', 'and the tablet\'s session too')
})

test('logout when the device\'s clock says the access token expired: the refresh first, one logout', async (t) => {
  const { app, baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const mp = standIn('bob')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep })
  const live = await client.ensureLogin()
  time.clock.at += 31_000
  const refreshed: string[] = []
  client.on('refreshed', (s) => refreshed.push(s.refreshToken))
  await client.logout()
  t.equal(mp.calls['POST /auth/refresh'], 1)
  t.equal(mp.calls['POST /auth/logout'], 1)
  t.equal(client.session(), null)
  const next = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: refreshed[0] } })
  t.equal(next.statusCode, 401, 'the refreshed session is ended at the gateway')
  t.not(refreshed[0], live.refreshToken)
})

test('logout({ allDevices }) without a 2xx rejects; the tokens are forgotten all the same', async (t) => {
  const { baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const mp = standIn('carol')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep, maxLoginsPerMinute: 10 })
  const ended: LoggedOut[] = []
  client.on('loggedOut', (e) => ended.push(e))

  await client.ensureLogin()
  mp.drop('POST /auth/logout')
  t.match(await client.logout({ allDevices: true }).catch((e: WechatAuthError) => e), { code: 'CLIENT_NETWORK', statusCode: 0 }, 'no answer')
  t.equal(client.session(), null, 'forgotten')
  t.equal(mp.storage.has('wechat-auth'), false)

  await client.ensureLogin()
  mp.drop('POST /auth/logout', 1, { statusCode: 503, data: { statusCode: 503, code: 'STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'down' } })
  t.match(await client.logout({ allDevices: true }).catch((e: WechatAuthError) => e), { code: 'STORE_UNAVAILABLE', statusCode: 503 }, 'a 503')
  t.equal(mp.calls['POST /auth/logout'], 2, 'a POST is not retried')
  t.equal(client.session(), null)

  await client.ensureLogin()
  time.clock.at += 31_000
  mp.drop('POST /auth/refresh', 3)
  t.match(await client.logout({ allDevices: true }).catch((e: WechatAuthError) => e), { code: 'CLIENT_NETWORK' }, 'an expired token whose refresh got no answer')
  t.equal(mp.calls['POST /auth/logout'], 2, 'not sent with a token known to be expired')
  t.equal(client.session(), null)

  await client.ensureLogin()
  mp.drop('POST /auth/logout')
  t.equal(await client.logout().then(() => 'resolved'), 'resolved', 'a logout of this device only resolves offline')
  t.same(ended.map((e) => e.reason), ['logout', 'logout', 'logout', 'logout'])
})

test('logout while a refresh is in flight: the rotation that answers during the logout does not bring the session back', async (t) => {
  const { baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL: 60 } })
  const mp = standIn('dora')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep })
  await client.ensureLogin()
  const ended: LoggedOut[] = []
  client.on('loggedOut', (e) => ended.push(e))
  time.clock.at += 50_000 // in the last fifth of the token's life: a request refreshes first
  const rotation = mp.hold('POST /auth/refresh')
  const orders = client.request({ url: '/api/orders' }).catch((err: unknown) => err)
  await rotation.answered
  const logout = mp.hold('POST /auth/logout')
  const out = client.logout()
  await logout.answered
  rotation.release() // the rotation's answer comes while the logout is still in flight
  await new Promise((resolve) => setImmediate(resolve))
  logout.release()
  await out
  t.equal(client.session(), null, 'logged out here: the rotation\'s pair was not kept')
  t.equal(mp.storage.has('wechat-auth'), false, 'nor stored')
  t.same(ended, [{ reason: 'logout' }], 'and told so')
  t.equal(mp.calls['POST /auth/refresh'], 1)
  // The request the app made before logging out does not log in again.
  t.match(await orders, { code: 'CLIENT_LOGGED_OUT', statusCode: 0 })
  t.equal(mp.logins, 1, 'no login after the logout')
  t.equal(client.session(), null)
  t.equal(ended.length, 1)
})

test('a request in flight when the app logs out: its AUTH_TOKEN_REVOKED is CLIENT_LOGGED_OUT, no new login', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('eve')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  await client.ensureLogin()
  // The answer comes after the logout, as the gateway would give it then.
  const late = mp.hold('GET /api/orders')
  mp.drop('GET /api/orders', 1, { statusCode: 401, data: { statusCode: 401, code: 'AUTH_TOKEN_REVOKED', error: 'Unauthorized', message: 'revoked' }, header: {} })
  const orders = client.request({ url: '/api/orders' }).catch((err: unknown) => err)
  await late.answered
  await client.logout()
  late.release()
  t.match(await orders, { code: 'CLIENT_LOGGED_OUT', statusCode: 0 })
  t.equal(mp.logins, 1, 'no login after the logout')
  t.equal(mp.calls['GET /api/orders'], 1, 'not sent again')
  t.equal(client.session(), null)

  t.match(await client.request({ url: '/api/orders' }), { statusCode: 200 }, 'a request made after the logout logs in')
  t.equal(mp.logins, 2)
})

test('logout() while a login is in flight: the login\'s session is not kept, and is ended at the gateway; a request of before gets CLIENT_LOGGED_OUT', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('finn')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const held = mp.hold('POST /auth/login')
  const orders = client.request({ url: '/api/orders' }).catch((err: unknown) => err)
  await held.answered
  await client.logout() // nothing stored yet: a login is out
  held.release()
  t.match(await orders, { code: 'CLIENT_LOGGED_OUT' })
  t.equal(client.session(), null, 'the login that answered after the logout is not kept')
  t.equal(mp.storage.has('wechat-auth'), false)
  for (let i = 0; i < 50 && mp.calls['POST /auth/logout'] !== 1; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(mp.calls['POST /auth/logout'], 1, 'its session logged out at the gateway')
  t.match(await client.request({ url: '/api/orders' }), { statusCode: 200 }, 'a request after the logout logs in')
  t.equal(mp.logins, 2)
})

test('decrypt() on a stale key while the app logs out: no new login after the logout', async (t) => {
  const { app, sim, baseUrl } = await gateway(t)
  const mp = standIn('gina')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  await client.ensureLogin()
  await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'gina.other' } }) // WeChat's key moves on
  const held = mp.hold('POST /auth/logout')
  const decrypted = client.decrypt(sim.encryptFor('gina', { nickName: 'G' })).catch((err: unknown) => err)
  await held.answered // decrypt logs the stale session out at the gateway
  await client.logout()
  held.release()
  t.match(await decrypted, { code: 'CLIENT_LOGGED_OUT' })
  t.equal(client.session(), null)
  t.equal(mp.logins, 1, 'no login after the app logged out')
})

test('logout() while a login is in flight whose answer has no tokens: CLIENT_BAD_RESPONSE, not a TypeError', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('hana')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const held = mp.hold('POST /auth/login')
  mp.drop('POST /auth/login', 1, { statusCode: 200, data: null, header: {} })
  const login = client.ensureLogin().catch((err: unknown) => err)
  await held.answered
  await client.logout()
  held.release()
  t.match(await login, { name: 'WechatAuthError', code: 'CLIENT_BAD_RESPONSE' })
  t.equal(client.session(), null)
})

test('a request made while logout() is out waits for it: the logout is told as such, and only then a new login', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('hugo')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const first = await client.ensureLogin()
  const told: string[] = []
  client.on('loggedOut', (e: LoggedOut) => told.push(`loggedOut:${e.reason}`))
  client.on('loggedIn', () => told.push('loggedIn'))
  const held = mp.hold('POST /auth/logout')
  const out = client.logout()
  await held.answered
  // A page the logout opens (wx.reLaunch) asks for its data at once. It used to be sent with the session
  // being logged out, whose AUTH_TOKEN_REVOKED logged in again before the logout said anything.
  const during = client.request({ url: '/api/orders' })
  // Time for it to go out and come back, were it sent now.
  for (let i = 0; i < 25 && (mp.calls['GET /api/orders'] ?? 0) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(mp.calls['GET /api/orders'] ?? 0, 0, 'not sent while the logout is out')
  held.release()
  await out
  t.equal(client.session(), null, 'no session when logout() resolves')
  t.same(told, ['loggedOut:logout'], 'the logout is told as a logout')
  t.match(await during, { statusCode: 200 }, 'the request is served, after a new login')
  t.same(told, ['loggedOut:logout', 'loggedIn'])
  t.not(client.session()?.accessToken, first.accessToken)
  t.equal(mp.logins, 2)
  t.equal(mp.calls['POST /auth/refresh'] ?? 0, 0)
})

test('a request made before a logout stays logged out, even when it waited for an earlier logout in flight', async (t) => {
  const { baseUrl } = await gateway(t)
  // Nothing stored: the request and the logout in the same tick.
  const fresh = standIn('ines')
  const first = createWechatAuthClient({ platform: fresh.wx, baseUrl })
  const before = first.request({ url: '/api/orders' }).catch((err: unknown) => err)
  await first.logout()
  t.match(await before, { code: 'CLIENT_LOGGED_OUT' }, 'not a login after the logout')
  t.equal(first.session(), null)

  // Logout twice (a double tap): a request made between the two waits for the first, and the second
  // ends it too.
  const mp = standIn('jon')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  await client.ensureLogin()
  const held = mp.hold('POST /auth/logout')
  const one = client.logout()
  await held.answered
  const between = client.request({ url: '/api/orders' }).catch((err: unknown) => err)
  const two = client.logout()
  held.release()
  await Promise.all([one, two])
  t.match(await between, { code: 'CLIENT_LOGGED_OUT' })
  t.equal(client.session(), null, 'no session after the second logout')
  t.equal(mp.logins, 1, 'no login after either')
})

test('logout({ allDevices }) with no session to send it with rejects CLIENT_LOGGED_OUT: "sign out everywhere" never silently does nothing', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('kai')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  await t.rejects(client.logout({ allDevices: true }), { code: 'CLIENT_LOGGED_OUT' }, 'never logged in')
  const held = mp.hold('POST /auth/login')
  const login = client.ensureLogin().catch((err: unknown) => err)
  await held.answered
  const everywhere = client.logout({ allDevices: true })
  held.release()
  await t.rejects(everywhere, { code: 'CLIENT_LOGGED_OUT' }, 'only a login in flight')
  t.match(await login, { code: 'CLIENT_LOGGED_OUT' })
  await t.resolves(client.logout(), 'a plain logout with nothing stored still resolves')
  t.equal(mp.calls['POST /auth/logout'] ?? 0, 1, 'only the ending of the login that answered after the logout')
})
