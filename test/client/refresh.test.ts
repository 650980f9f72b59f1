// fastify-wechat-auth/client refreshing, against a real gateway: one /auth/refresh for many callers,
// ahead of expiry by the client's clock, and a lost answer retried within the grace window.
import { test } from 'tap'
import { createWechatAuthClient, type Session, type WechatAuthError } from '../../client/index.js'
import { createHs256Signer } from '../../lib/jwt-signer.js'
import { JWT_SECRET, bearer } from '../helper.js'
import { fakeTime, gateway, standIn } from './stand-in.js'

const orders = { url: '/api/orders' }
const ACCESS_TOKEN_TTL = 30

/** The same claims signed a minute ago: an access token the gateway finds expired, whatever the device thinks. */
function expiredCopy (accessToken: string): string {
  const claims = JSON.parse(Buffer.from(accessToken.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>
  // The signer adds iss, iat and exp: the minute-old ones.
  const { iss, ...payload } = claims
  return createHs256Signer({ secret: JWT_SECRET, iss: String(iss), ttlSec: ACCESS_TOKEN_TTL, now: () => Date.now() - 60_000 })(payload)
}

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
