// fastify-wechat-auth/client refreshing, against a real gateway: one /auth/refresh for many callers,
// ahead of expiry by the client's clock, and a lost answer retried within the grace window.
import { test } from 'tap'
import { createWechatAuthClient, type Session, type WechatAuthError } from '../../client/index.js'
import { bearer } from '../helper.js'
import { expiredCopy, fakeTime, gateway, standIn } from './stand-in.js'

const orders = { url: '/api/orders' }
const ACCESS_TOKEN_TTL = 30

test('20 concurrent requests with an expired access token: exactly one /auth/refresh, all 20 succeed', async (t) => {
  const { app, baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const mp = standIn('alice')
  const first = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const live = await first.ensureLogin()
  // The stored token expired at the gateway while the device's clock says it has time left (a clock
  // behind, or a mini program asleep in the background): only the gateway's 401 tells.
  const stale = expiredCopy(live.accessToken)
  t.equal((await app.inject({ url: '/api/orders', headers: bearer(stale) })).json().code, 'AUTH_TOKEN_EXPIRED', 'the gateway says it expired')
  mp.storage.set('wechat-auth', { ...live, accessToken: stale })

  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const refreshed: Session[] = []
  client.on('refreshed', (s) => refreshed.push(s))
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await client.request(orders)))
  t.same(answers.map((a) => a.statusCode), Array(20).fill(200), 'all 20 succeed')
  t.equal(mp.calls['POST /auth/refresh'], 1, 'exactly one /auth/refresh')
  t.equal(mp.calls['GET /api/orders'], 40, 'each sent twice: expired, then with the new token')
  t.equal(mp.logins, 1, 'no new login')
  t.equal(refreshed.length, 1, 'one refreshed event')
  t.not(client.session()?.refreshToken, live.refreshToken, 'the refresh token rotated')
  t.equal((mp.storage.get('wechat-auth') as Session).accessToken, client.session()?.accessToken, 'and was stored')
})

test('ahead of expiry: a request in the last fifth of the token\'s life refreshes first, once for 20', async (t) => {
  const { baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const mp = standIn('bob')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep })
  const live = await client.ensureLogin()
  t.equal(live.expiresAt - live.receivedAt, ACCESS_TOKEN_TTL * 1000)
  time.clock.at += 23_000
  await client.request(orders)
  t.equal(mp.calls['POST /auth/refresh'], undefined, 'at 23 s of 30, not yet')
  time.clock.at += 2_000
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await client.request(orders)))
  t.same(answers.map((a) => a.statusCode), Array(20).fill(200))
  t.equal(mp.calls['POST /auth/refresh'], 1, 'at 25 s, one refresh before the requests')
  t.equal(mp.calls['GET /api/orders'], 21, 'none of them refused')
  t.equal(client.session()?.receivedAt, time.clock.at, 'a new token, its life counted from now')
})

test('a refresh whose answer is lost: the retry gets the same successor, and the session survives', async (t) => {
  const { baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const mp = standIn('carol')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep })
  await client.ensureLogin()
  time.clock.at += 31_000
  mp.drop('POST /auth/refresh')
  const answer = await client.request<{ openid: string }>(orders)
  t.equal(answer.statusCode, 200, 'the request succeeds')
  t.equal(mp.calls['POST /auth/refresh'], 2, 'the refresh was sent again')
  t.equal(mp.dropped.length, 1)
  const lost = mp.dropped[0]?.data as { refreshToken: string }
  t.equal(client.session()?.refreshToken, lost.refreshToken, 'the same successor as the lost answer')
  t.same(time.clock.slept, [200], 'after a short wait, well within REFRESH_GRACE_SECONDS')
  t.equal(mp.logins, 1, 'no new login: the session survived')

  time.clock.at += 31_000
  t.equal((await client.request(orders)).statusCode, 200, 'and refreshes again later')
  t.equal(mp.calls['POST /auth/refresh'], 3)
})

test('a refresh whose pair cannot be stored (storage full): the pair before is not left there, so the next cold start logs in, not replays it', async (t) => {
  const { baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL, REFRESH_GRACE_SECONDS: 0 } })
  const mp = standIn('dora')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep })
  await client.ensureLogin()
  const setStorage = mp.wx.setStorageSync
  mp.wx.setStorageSync = () => { throw new Error('setStorage:fail exceed storage max size 10MB') }
  time.clock.at += 31_000
  t.equal((await client.request(orders)).statusCode, 200, 'refreshed, the new pair kept in memory')
  t.equal(mp.storage.has('wechat-auth'), false, 'the spent pair is not left in storage')
  mp.wx.setStorageSync = setStorage
  const told: string[] = []
  const restarted = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep })
  restarted.on('loggedOut', (e: { reason: string }) => told.push(e.reason))
  t.equal((await restarted.request(orders)).statusCode, 200)
  t.same(told, [], 'not AUTH_REFRESH_REUSED: the spent refresh token was never sent again')
  t.equal(mp.logins, 2, 'a plain login')
  t.equal((await client.request(orders)).statusCode, 200, 'and the session of before lives on, not revoked as stolen')
})

test('a refresh that never answers: ahead of expiry the old token still serves; after, the app gets CLIENT_NETWORK', async (t) => {
  const { baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const mp = standIn('dave')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep, refreshTries: 2 })
  await client.ensureLogin()
  time.clock.at += 26_000
  mp.drop('POST /auth/refresh', 2)
  t.equal((await client.request(orders)).statusCode, 200, 'sent with the token it has')
  t.equal(mp.calls['POST /auth/refresh'], 2, 'refreshTries')
  time.clock.at += 10_000
  mp.drop('POST /auth/refresh', 2)
  const err = await client.request(orders).catch((e: WechatAuthError) => e)
  t.match(err, { code: 'CLIENT_NETWORK', statusCode: 0 })
  t.equal(mp.calls['GET /api/orders'], 1, 'no request with a token known to be expired')
  t.equal((await client.request(orders)).statusCode, 200, 'the network back: the rotation taken in the grace window, the same session')
  t.equal(mp.logins, 1)
})

test('a refresh token used by someone else: AUTH_REFRESH_REUSED ends the session and one login replaces it', async (t) => {
  const { app, baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const mp = standIn('erin')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep })
  const live = await client.ensureLogin()
  // Someone with a copy of the storage rotated it twice: the client's token is no longer even the predecessor.
  const stolen = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: live.refreshToken } })
  const again = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: stolen.json().refreshToken } })
  t.same([stolen.statusCode, again.statusCode], [200, 200])
  time.clock.at += 31_000
  const reasons: string[] = []
  client.on('loggedOut', (e) => reasons.push(e.reason))
  t.equal((await client.request(orders)).statusCode, 200)
  t.same(reasons, ['AUTH_REFRESH_REUSED'], 'reuse detected: the gateway revoked the session, the app is told')
  t.equal(mp.logins, 2, 'one new login')
})

test('a refresh answer that lands after its session ended (logout, a new login) is dropped; the new session refreshes on its own', async (t) => {
  const { baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const mp = standIn('frank')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep })
  const events: string[] = []
  client.on('loggedIn', () => events.push('loggedIn'))
  client.on('refreshed', () => events.push('refreshed'))
  client.on('loggedOut', (e) => events.push(`loggedOut:${e.reason}`))
  await client.ensureLogin()
  time.clock.at += 25_000
  const held = mp.hold('POST /auth/refresh')
  const late = client.request(orders).catch((err: unknown) => err)
  await held.answered
  await client.logout()
  const second = await client.ensureLogin()
  time.clock.at += 25_000
  // The new session is in its own refresh-ahead window while the old one's refresh is still in flight.
  const next = client.request(orders)
  await new Promise((resolve) => setImmediate(resolve))
  held.release()
  t.match(await late, { code: 'CLIENT_LOGGED_OUT' }, 'the request of before the logout is not sent with the new session')
  t.equal((await next).statusCode, 200)
  t.equal(mp.calls['POST /auth/refresh'], 2, 'the new session did not wait for the old one\'s refresh')
  t.equal(mp.logins, 2, 'no third login: the new session was never replaced by a dead one')
  t.same(events, ['loggedIn', 'loggedOut:logout', 'loggedIn', 'refreshed'])
  t.equal(client.session()?.openid, second.openid)
  t.not(client.session()?.refreshToken, second.refreshToken, 'the new session\'s successor is kept')
  t.equal((mp.storage.get('wechat-auth') as Session).refreshToken, client.session()?.refreshToken)
})

test('a refresh token the gateway\'s schema refuses: not loaded from storage; a 400 FST_ERR_VALIDATION from /auth/refresh counts as AUTH_REFRESH_INVALID', async (t) => {
  const { baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const mp = standIn('grace')
  const time = fakeTime()
  const options = { platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep }
  const live = await createWechatAuthClient(options).ensureLogin()
  time.clock.at += 31_000
  for (const refreshToken of ['', 'x'.repeat(513)]) {
    mp.storage.set('wechat-auth', { ...live, refreshToken })
    const client = createWechatAuthClient(options)
    t.equal(client.session(), null, `a refresh token of ${refreshToken.length} characters is no session`)
    t.equal(await client.request(orders).then((r) => r.statusCode, (e: WechatAuthError) => e.code), 200, 'one login')
  }
  t.equal(mp.logins, 3)
  t.equal(mp.calls['POST /auth/refresh'], undefined)

  // A gateway that refuses what the client sends by its schema: the session can never refresh.
  const request = mp.wx.request
  mp.wx.request = (opts) => request(opts.url.endsWith('/auth/refresh') ? { ...opts, data: { refreshToken: 'x'.repeat(600) } } : opts)
  const client = createWechatAuthClient(options)
  const reasons: string[] = []
  client.on('loggedOut', (e) => reasons.push(e.reason))
  time.clock.at += 31_000
  t.equal(await client.request(orders).then((r) => r.statusCode, (e: WechatAuthError) => e.code), 200)
  t.equal(mp.calls['POST /auth/refresh'], 1)
  t.same(reasons, ['AUTH_REFRESH_INVALID'], 'forgotten, then one login')
  t.equal(mp.logins, 4)
})

test('a refresh whose answer a proxy replaced with 504: sent again (a retried refresh is safe), the same successor', async (t) => {
  const { baseUrl } = await gateway(t, { config: { ACCESS_TOKEN_TTL } })
  const mp = standIn('heidi')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep, random: () => 0.5 })
  await client.ensureLogin()
  time.clock.at += 31_000
  mp.drop('POST /auth/refresh', 1, { statusCode: 504, data: '<html>504 Gateway Time-out</html>' })
  t.equal((await client.request(orders)).statusCode, 200)
  t.equal(mp.calls['POST /auth/refresh'], 2)
  t.equal(client.session()?.refreshToken, (mp.dropped[0]?.data as { refreshToken: string }).refreshToken, 'the rotation the proxy hid')
  t.same(time.clock.slept, [250])
  t.equal(mp.logins, 1)
})
