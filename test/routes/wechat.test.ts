import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { test } from 'tap'
import type { AccessClaims } from '../../lib/schemas.js'
import type { PhoneNumber } from '../../lib/wechat-client.js'
import configPlugin from '../../plugins/config.js'
import jwtPlugin from '../../plugins/jwt.js'
import storePlugin from '../../plugins/store.js'
import wechatPlugin from '../../plugins/wechat.js'
import wechatRoutes from '../../routes/wechat.js'
import type { Simulator } from '../../simulator/index.js'
import { APPID, bearer, buildApp, login, refusedWithout, startRedis, startSim } from '../helper.js'

const post = (url: string, token: string, payload: unknown): { method: 'POST', url: string, headers: Record<string, string>, payload: string } =>
  ({ method: 'POST', url, headers: { ...bearer(token), 'content-type': 'application/json' }, payload: JSON.stringify(payload) })

/** The encrypted half of what the simulator makes for a user (it also gives rawData and signature). */
function encrypted (sim: Simulator, user: string, data: Record<string, unknown>): { encryptedData: string, iv: string } {
  const { encryptedData, iv } = sim.encryptFor(user, data)
  return { encryptedData, iv }
}

/** What WeChat would hand the client: JSON encrypted under a session_key, with a watermark. */
function encrypt (sessionKey: string, data: Record<string, unknown> | string): { encryptedData: string, iv: string } {
  const iv = randomBytes(16)
  const cipher = createCipheriv('aes-128-cbc', Buffer.from(sessionKey, 'base64'), iv)
  const encryptedData = Buffer.concat([cipher.update(typeof data === 'string' ? data : JSON.stringify(data)), cipher.final()]).toString('base64')
  return { encryptedData, iv: iv.toString('base64') }
}

test('POST /auth/wechat/decrypt', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const logs: string[] = []
  const app = await buildApp(t, { sim, redisServer: redis, logs })
  const keys: string[] = []

  t.test('decrypts with the session\'s session_key and returns the data with its watermark', async (t) => {
    const pair = await login(app, 'alice.d1')
    const payload = encrypted(sim, 'alice', { nickName: 'Alice', gender: 2 })
    const res = await app.inject(post('/auth/wechat/decrypt', pair.accessToken, payload))
    t.equal(res.statusCode, 200)
    t.match(res.json(), { nickName: 'Alice', gender: 2, watermark: { appid: APPID, timestamp: Number } })
    t.notMatch(res.body, sim.sessionKeyOf('alice') as string, 'the session_key is not in the answer')
  })

  t.test('data made after a second login is WX_SESSION_KEY_STALE for the first session', async (t) => {
    const first = await login(app, 'bob.d1')
    keys.push(sim.sessionKeyOf('bob') as string)
    const second = await login(app, 'bob.d2')
    const payload = encrypted(sim, 'bob', { openId: sim.openidOf('bob') })
    const stale = await app.inject(post('/auth/wechat/decrypt', first.accessToken, payload))
    t.equal(stale.statusCode, 401)
    t.equal(stale.json().code, 'WX_SESSION_KEY_STALE')
    const fresh = await app.inject(post('/auth/wechat/decrypt', second.accessToken, payload))
    t.equal(fresh.statusCode, 200)
    t.equal(fresh.json().openId, sim.openidOf('bob'))
  })

  t.test('data nested thousands of levels deep under the right key is 400 WX_DECRYPT_FAILED, not a 500 from the answer\'s serialiser', async (t) => {
    const pair = await login(app, 'nest.d1')
    const deep = `{"watermark":{"appid":"${APPID}","timestamp":1},"x":${'['.repeat(12_000)}${']'.repeat(12_000)}}` // 32 KiB in base64
    const res = await app.inject(post('/auth/wechat/decrypt', pair.accessToken, encrypt(sim.sessionKeyOf('nest') as string, deep)))
    t.same([res.statusCode, res.json().code], [400, 'WX_DECRYPT_FAILED'])
  })

  t.test('a + turned into a space on the way is repaired', async (t) => {
    const pair = await login(app, 'carol.d1')
    let payload = encrypted(sim, 'carol', { n: 1 })
    for (let i = 0; !payload.encryptedData.includes('+') && i < 50; i++) payload = encrypted(sim, 'carol', { n: i, pad: 'x'.repeat(i) })
    const res = await app.inject(post('/auth/wechat/decrypt', pair.accessToken,
      { encryptedData: payload.encryptedData.replace(/\+/g, ' '), iv: payload.iv.replace(/\+/g, ' ') }))
    t.equal(res.statusCode, 200)
  })

  t.test('malformed input is 400 WX_DECRYPT_FAILED; a wrong shape is a validation error', async (t) => {
    const pair = await login(app, 'dave.d1')
    const good = encrypted(sim, 'dave', { ok: true })
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...good, encryptedData: 'not base64!' }, 'WX_DECRYPT_FAILED'],
      [{ ...good, encryptedData: '' }, 'WX_DECRYPT_FAILED'],
      [{ ...good, iv: Buffer.alloc(8).toString('base64') }, 'WX_DECRYPT_FAILED'],
      [{ ...good, encryptedData: Buffer.alloc(20).toString('base64') }, 'WX_DECRYPT_FAILED'],
      [encrypt(sim.sessionKeyOf('dave') as string, { watermark: { appid: 'wxffffffffffffffff', timestamp: 1 } }), 'WX_DECRYPT_FAILED'],
      [{ iv: good.iv }, 'FST_ERR_VALIDATION'],
      [{ ...good, extra: 1 }, 'FST_ERR_VALIDATION'],
      [{ ...good, encryptedData: 5 }, 'FST_ERR_VALIDATION']
    ]
    for (const [body, code] of cases) {
      const res = await app.inject(post('/auth/wechat/decrypt', pair.accessToken, body))
      t.equal(res.statusCode, 400, JSON.stringify(body).slice(0, 80))
      t.equal(res.json().code, code, JSON.stringify(body).slice(0, 80))
    }
    const huge = await app.inject(post('/auth/wechat/decrypt', pair.accessToken, { ...good, encryptedData: 'A'.repeat(70_000) }))
    t.equal(huge.statusCode, 413)
  })

  t.test('the /auth/wechat/* routes take no query string: one is refused, not ignored', async (t) => {
    const pair = await login(app, 'fay.d1')
    const calls = sim.calls.length
    const cases: Array<[string, unknown]> = [
      ['/auth/wechat/decrypt?iv=x', encrypted(sim, 'fay', { ok: true })],
      ['/auth/wechat/verify-signature?x=1', { rawData: '{}', signature: '0' }],
      ['/auth/wechat/phone?code=fay.p1', { code: 'fay.p2' }]
    ]
    for (const [url, body] of cases) {
      const res = await app.inject(post(url, pair.accessToken, body))
      t.same([res.statusCode, res.json().code], [400, 'FST_ERR_VALIDATION'], url)
    }
    t.equal(sim.calls.length, calls, 'WeChat not asked for a phone number')
  })

  t.test('needs a live session', async (t) => {
    const payload = encrypted(sim, 'alice', { x: 1 })
    const none = await app.inject({ method: 'POST', url: '/auth/wechat/decrypt', payload })
    t.equal(none.statusCode, 401)
    t.equal(none.json().code, 'AUTH_TOKEN_MISSING')
    const pair = await login(app, 'erin.d1')
    await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(pair.accessToken) })
    const ended = await app.inject(post('/auth/wechat/decrypt', pair.accessToken, encrypted(sim, 'erin', { x: 1 })))
    t.equal(ended.statusCode, 401)
    t.equal(ended.json().code, 'AUTH_TOKEN_REVOKED')
  })

  t.test('no session_key in the logs', async (t) => {
    keys.push(...['alice', 'bob', 'carol', 'dave', 'erin'].map((user) => sim.sessionKeyOf(user) as string))
    for (const key of keys) t.notOk(logs.join('\n').includes(key), 'a session_key')
  })
})

test('POST /auth/wechat/verify-signature', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  const first = await login(app, 'alice.v1')
  const rawData = JSON.stringify({ nickName: 'Alice', avatarUrl: 'https://example.com/a.png' })
  const sign = (key: string): string => createHash('sha1').update(rawData + key).digest('hex')

  const ok = await app.inject(post('/auth/wechat/verify-signature', first.accessToken, { rawData, signature: sign(sim.sessionKeyOf('alice') as string) }))
  t.equal(ok.statusCode, 204)
  t.equal(ok.body, '')
  const tampered = await app.inject(post('/auth/wechat/verify-signature', first.accessToken,
    { rawData: rawData.replace('Alice', 'Mallory'), signature: sign(sim.sessionKeyOf('alice') as string) }))
  t.equal(tampered.statusCode, 400)
  t.equal(tampered.json().code, 'WX_SIGNATURE_INVALID')
  const junk = await app.inject(post('/auth/wechat/verify-signature', first.accessToken, { rawData, signature: 'zz' }))
  t.equal(junk.json().code, 'WX_SIGNATURE_INVALID')
  await login(app, 'alice.v2')
  const stale = await app.inject(post('/auth/wechat/verify-signature', first.accessToken, { rawData, signature: sign(sim.sessionKeyOf('alice') as string) }))
  t.equal(stale.json().code, 'WX_SIGNATURE_INVALID', 'signed with a newer session_key than this session holds')
  const shape = await app.inject(post('/auth/wechat/verify-signature', first.accessToken, { rawData }))
  t.equal(shape.json().code, 'FST_ERR_VALIDATION')
})

test('POST /auth/wechat/phone', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const logs: string[] = []
  const seen: Array<{ user: AccessClaims, phone: PhoneNumber }> = []
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    logs,
    config: { RATE_LIMIT_PHONE_MAX: 3 },
    onPhoneNumber: async (user, phone) => { seen.push({ user, phone }) }
  })
  const pair = await login(app, 'alice.p0')
  const phoneCalls = (): typeof sim.calls => sim.calls.filter((c) => c.path === '/wxa/business/getuserphonenumber')

  const res = await app.inject(post('/auth/wechat/phone', pair.accessToken, { code: 'alice.p1' }))
  t.equal(res.statusCode, 200)
  t.same(res.json(), sim.phoneOf('alice'))
  t.equal(seen.length, 1, 'the host hook ran')
  t.match(seen[0], { user: { sub: sim.openidOf('alice'), aud: APPID }, phone: sim.phoneOf('alice') })

  const reused = await app.inject(post('/auth/wechat/phone', pair.accessToken, { code: 'alice.p1' }))
  t.equal(reused.statusCode, 400)
  t.equal(reused.json().code, 'WX_PHONE_CODE_INVALID')

  // WeChat stops accepting the access_token: one renewal, one retry, and the caller never knows.
  const tokenCalls = sim.calls.filter((c) => c.path === '/cgi-bin/stable_token').length
  const refused = sim.accessTokenOf() as string
  sim.invalidateAccessToken()
  const before = phoneCalls().length
  const retried = await app.inject(post('/auth/wechat/phone', pair.accessToken, { code: 'alice.p2' }))
  t.equal(retried.statusCode, 200)
  t.equal(sim.calls.filter((c) => c.path === '/cgi-bin/stable_token').length, tokenCalls + 1, 'exactly one renewal')
  t.same(phoneCalls().slice(before).map((c) => c.errcode), [40001, 0], 'exactly one retry')

  const limited = await app.inject(post('/auth/wechat/phone', pair.accessToken, { code: 'alice.p3' }))
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'RATE_LIMITED', 'per user: the budget of 3 a minute is spent')
  const other = await login(app, 'limit-bob')
  const weLimit = await app.inject(post('/auth/wechat/phone', other.accessToken, { code: 'limit.p1' }))
  t.equal(weLimit.statusCode, 429)
  t.equal(weLimit.json().code, 'WX_RATE_LIMITED', 'another user has his own budget; WeChat\'s limit is its own code')
  const invalid = await app.inject(post('/auth/wechat/phone', other.accessToken, { code: 'invalid.p1' }))
  t.equal(invalid.json().code, 'WX_PHONE_CODE_INVALID')
  const noAuth = await app.inject({ method: 'POST', url: '/auth/wechat/phone', payload: { code: 'alice.p9' } })
  t.equal(noAuth.json().code, 'AUTH_TOKEN_MISSING')
  t.equal(phoneCalls().filter((c) => c.code === 'alice.p9').length, 0, 'unauthenticated calls never reach WeChat')

  const text = logs.join('\n')
  t.notOk(text.includes(sim.accessTokenOf() as string), 'no access_token in the logs')
  t.notOk(text.includes(refused), 'not even the one WeChat refused')
  t.notOk(/alice\.p\d/.test(text), 'no phone code in the logs')
  t.notOk(text.includes(sim.phoneOf('alice').purePhoneNumber), 'no phone number in the logs')
})

test('a failing onPhoneNumber hook is a 500 without details', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, onPhoneNumber: () => { throw new Error('host database down') } })
  const pair = await login(app, 'alice')
  const res = await app.inject(post('/auth/wechat/phone', pair.accessToken, { code: 'alice.x' }))
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'INTERNAL_ERROR')
  t.notMatch(res.body, /host database/)
})

test('WeChat down: the phone route answers 503 WX_UNAVAILABLE quickly, never hangs', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, config: { WECHAT_TIMEOUT_MS: 500 } })
  const pair = await login(app, 'alice')
  await sim.close()
  const started = Date.now()
  const res = await app.inject(post('/auth/wechat/phone', pair.accessToken, { code: 'alice.x' }))
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'WX_UNAVAILABLE')
  t.ok(Date.now() - started < 2_000, 'within the WeChat deadline')
})

test('registered alone, without the plugins it needs, it refuses the boot naming the one to register first', async (t) => {
  const sim = await startSim(t)
  const config = { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url }
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(configPlugin, { config })
  await app.register(storePlugin)
  await app.register(wechatPlugin)
  await app.register(jwtPlugin)
  await refusedWithout(t, app, wechatRoutes, { prefix: '/auth/wechat' }, 'wechat-auth-sessions', 'wechat-auth-wechat-routes')
})
