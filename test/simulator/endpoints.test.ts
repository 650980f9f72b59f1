// The WeChat endpoints as a client sees them: answers, errcodes, one-time codes, access_tokens.
import { createHash, createHmac } from 'node:crypto'
import { request } from 'undici'
import { test } from 'tap'
import { startSim, APPID, SECRET } from '../helper.js'
import { call, checkSession, decrypt, get, logIn, phone, q, sessionQuery, sign, stableToken, tokenErrcode, SECOND, T0, type Json } from './fixtures/client.js'

test('jscode2session answers like WeChat: text/plain JSON, no errcode on success', async (t) => {
  const sim = await startSim(t)
  const ok = await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'alice.x' })}`)
  t.equal(ok.status, 200)
  t.equal(ok.type, 'text/plain')
  t.match(ok.body, { openid: sim.openidOf('alice'), unionid: sim.unionidOf('alice'), session_key: /^[A-Za-z0-9+/]{22}==$/ })
  t.notOk(typeof ok.body === 'object' && 'errcode' in ok.body)
  t.equal(sim.openidOf('alice').length, 28)
})

test('the same user always gets the same openid; each code works once', async (t) => {
  const sim = await startSim(t)
  const a = await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'bob.1' })}`)
  const b = await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'bob.2' })}`)
  const again = await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'bob.1' })}`)
  t.equal((a.body as Record<string, unknown>).openid, (b.body as Record<string, unknown>).openid)
  t.not((a.body as Record<string, unknown>).session_key, (b.body as Record<string, unknown>).session_key, 'a new session_key per login')
  t.match(again.body, { errcode: 40163 })
})

test('special users and bad credentials produce WeChat errors', async (t) => {
  const sim = await startSim(t)
  const cases: Array<[Record<string, string>, number]> = [
    [{ js_code: 'invalid' }, 40029],
    [{ js_code: 'risky.1' }, 40226],
    [{ js_code: 'limit.1' }, 45011],
    [{ js_code: 'busy.1' }, -1],
    [{ appid: 'wx1111111111111111' }, 40013],
    [{ secret: 'nope' }, 40125],
    [{ grant_type: 'password' }, 40002],
    [{ js_code: '' }, 41008]
  ]
  for (const [over, errcode] of cases) {
    t.match((await get(`${sim.url}/sns/jscode2session?${q(over)}`)).body, { errcode }, JSON.stringify(over))
  }
  t.notOk('errcode' in ((await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'busy.1' })}`)).body as object), 'busy succeeds on the second try')
  t.equal((await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'garbage' })}`)).body, '<html><body>502 Bad Gateway</body></html>')
  t.equal((await get(`${sim.url}/nope`)).status, 404)
})

test('stable_token returns the current token with its remaining lifetime, and a new one when 5 minutes or less remain', async (t) => {
  let clock = T0
  const sim = await startSim(t, { now: () => clock })
  const res = await call(`${sim.url}/cgi-bin/stable_token`, { body: { grant_type: 'client_credential', appid: APPID, secret: SECRET } })
  t.equal(res.type, 'text/plain')
  t.match(res.body, { access_token: /^[A-Za-z0-9_-]{100,}$/, expires_in: 7200 })
  t.notOk('errcode' in res.body)
  const first = res.body.access_token as string
  t.equal(sim.accessTokenOf(), first)

  clock += 1000 * SECOND
  t.same(await stableToken(sim, { force_refresh: false }), { access_token: first, expires_in: 6200 })
  clock = T0 + 6900 * SECOND
  const second = await stableToken(sim)
  t.not(second.access_token, first, 'renewed with 300 s left')
  t.equal(second.expires_in, 7200)
  t.equal(await tokenErrcode(sim, first), 0, 'the previous token works until its own expiry')
  clock = T0 + 7200 * SECOND
  t.equal(await tokenErrcode(sim, first), 42001)
  t.equal(await tokenErrcode(sim, second.access_token), 0)
  t.same(await stableToken(sim), { access_token: second.access_token, expires_in: 6900 })
  t.equal(sim.calls.filter((c) => c.path === '/cgi-bin/stable_token').length, 4)
  t.match(sim.calls.at(-1), { path: '/cgi-bin/stable_token', code: null, errcode: 0, appid: APPID })
})

test('force_refresh always issues a new token; the replaced one works 5 more minutes at most', async (t) => {
  let clock = T0
  const sim = await startSim(t, { now: () => clock })
  const first = (await stableToken(sim)).access_token
  clock += 60 * SECOND
  const forced = await stableToken(sim, { force_refresh: true })
  t.not(forced.access_token, first)
  t.equal(forced.expires_in, 7200)
  t.equal((await stableToken(sim)).access_token, forced.access_token, 'normal mode then returns the new one')
  clock += 299 * SECOND
  t.equal(await tokenErrcode(sim, first), 0)
  clock += SECOND
  t.equal(await tokenErrcode(sim, first), 40001, 'replaced: not latest')
  t.equal(await tokenErrcode(sim, forced.access_token), 0)

  clock += 7100 * SECOND
  const late = await stableToken(sim, { force_refresh: true })
  clock += 100 * SECOND
  t.equal(await tokenErrcode(sim, forced.access_token), 42001, 'with less than 5 minutes left it just expires')
  t.equal(await tokenErrcode(sim, late.access_token), 0)
})

test('stable_token errors', async (t) => {
  const sim = await startSim(t)
  const cases: Array<[unknown, number]> = [
    ['not json', 47001],
    ['', 47001],
    [[1], 47001],
    [{ appid: APPID, secret: SECRET }, 40002],
    [{ grant_type: 'authorization_code', appid: APPID, secret: SECRET }, 40002],
    [{ grant_type: 'client_credential', appid: 'wx1111111111111111', secret: SECRET }, 40013],
    [{ grant_type: 'client_credential', secret: SECRET }, 40013],
    [{ grant_type: 'client_credential', appid: APPID, secret: 'nope' }, 40125],
    [{ grant_type: 'client_credential', appid: APPID }, 40125]
  ]
  for (const [body, errcode] of cases) {
    t.match((await call(`${sim.url}/cgi-bin/stable_token`, { body })).body, { errcode }, JSON.stringify(body))
  }
  t.equal(sim.calls.filter((c) => c.path === '/cgi-bin/stable_token').length, cases.length)
  t.same(sim.calls.at(-1), { path: '/cgi-bin/stable_token', code: null, errcode: 40125, appid: APPID })
  t.same(sim.calls.at(-3), { path: '/cgi-bin/stable_token', code: null, errcode: 40013 }, 'no appid when it is unknown')
  t.equal(sim.accessTokenOf(), undefined, 'no token issued')
  t.equal((await request(`${sim.url}/cgi-bin/stable_token`)).statusCode, 404, 'GET is not served')
})

test('tokenTtlSec sets the lifetime; stableTokenDelayMs holds answers so concurrent callers overlap', async (t) => {
  const sim = await startSim(t, { tokenTtlSec: 600, stableTokenDelayMs: 100 })
  const started = Date.now()
  const [a, b] = await Promise.all([stableToken(sim), stableToken(sim)])
  t.ok(Date.now() - started >= 90, 'answers were delayed')
  t.equal(a?.expires_in, 600)
  t.equal(a?.access_token, b?.access_token, 'both callers get the one current token')
  t.equal(sim.calls.filter((c) => c.path === '/cgi-bin/stable_token').length, 2)
})

test('invalidateAccessToken revokes the current and the previous token; normal mode then issues a new one', async (t) => {
  let clock = T0
  const sim = await startSim(t, { now: () => clock })
  const previous = (await stableToken(sim)).access_token
  clock += 7000 * SECOND
  const current = (await stableToken(sim)).access_token
  t.not(current, previous)
  t.equal(await tokenErrcode(sim, previous), 0)
  sim.invalidateAccessToken()
  t.equal(sim.accessTokenOf(), undefined)
  t.equal(await tokenErrcode(sim, previous), 40001)
  t.equal(await tokenErrcode(sim, current), 40001)
  const renewed = await stableToken(sim)
  t.not(renewed.access_token, current)
  t.equal(renewed.expires_in, 7200)
  t.equal(await tokenErrcode(sim, renewed.access_token), 0)
})

test('every endpoint that takes an access_token: missing 41001, unknown 40001, expired 42001', async (t) => {
  let clock = T0
  const sim = await startSim(t, { now: () => clock })
  const expired = (await stableToken(sim)).access_token
  clock += 7200 * SECOND
  const endpoints: Record<string, (token: string | null) => Promise<Json>> = {
    checksession: async (token) => (await call(`${sim.url}/wxa/checksession?${token === null ? '' : `access_token=${token}&`}openid=o&signature=s&sig_method=hmac_sha256`)).body,
    resetusersessionkey: async (token) => (await call(`${sim.url}/wxa/resetusersessionkey?${token === null ? '' : `access_token=${token}&`}openid=o&signature=s&sig_method=hmac_sha256`)).body,
    getuserphonenumber: async (token) => (await call(`${sim.url}/wxa/business/getuserphonenumber${token === null ? '' : `?access_token=${token}`}`, { body: { code: 'alice.x' } })).body
  }
  for (const [name, send] of Object.entries(endpoints)) {
    t.match(await send(null), { errcode: 41001 }, `${name} without a token`)
    t.match(await send(''), { errcode: 41001 }, `${name} with an empty token`)
    t.match(await send('nope'), { errcode: 40001 }, `${name} with an unknown token`)
    t.match(await send(expired), { errcode: 42001 }, `${name} with an expired token`)
  }
  t.notOk(sim.calls.some((c) => c.path !== '/cgi-bin/stable_token' && c.errcode === 0), 'nothing was done')
})

test('checksession accepts the HMAC of the current session_key string, nothing else', async (t) => {
  const sim = await startSim(t)
  const token = (await stableToken(sim)).access_token
  const openid = sim.openidOf('alice')
  const key = await logIn(sim, 'alice.1')
  t.same(await checkSession(sim, token, openid, sign(key)), { errcode: 0, errmsg: 'ok' })
  t.match(sim.calls.at(-1), { path: '/wxa/checksession', code: null, errcode: 0, appid: APPID })
  const decodedKeySignature = createHmac('sha256', Buffer.from(key, 'base64')).update('').digest('hex')
  t.match(await checkSession(sim, token, openid, decodedKeySignature), { errcode: 87009 }, 'keyed with the decoded bytes')
  t.match(await checkSession(sim, token, openid, sign(key).toUpperCase()), { errcode: 87009 }, 'uppercase hex')
  t.match(await checkSession(sim, token, openid, ''), { errcode: 87009 })
  t.match(await checkSession(sim, token, sim.openidOf('nobody'), sign(key)), { errcode: 87009 }, 'unknown openid')
  t.match(await checkSession(sim, token, openid, sign(key), 'md5'), { errcode: 40097 })
  t.match((await call(`${sim.url}/wxa/checksession?access_token=${token}&openid=${openid}&signature=${sign(key)}`)).body, { errcode: 40097 }, 'no sig_method')

  const newer = await logIn(sim, 'alice.2')
  t.match(await checkSession(sim, token, openid, sign(key)), { errcode: 87009 }, 'a new login replaces the session_key')
  t.match(await checkSession(sim, token, openid, sign(newer)), { errcode: 0 })
})

test('resetusersessionkey issues a new session_key for a valid signature', async (t) => {
  const sim = await startSim(t)
  const token = (await stableToken(sim)).access_token
  const openid = sim.openidOf('alice')
  const old = await logIn(sim, 'alice')
  const reset = (await call(`${sim.url}/wxa/resetusersessionkey?${sessionQuery(token, openid, sign(old))}`)).body
  t.match(reset, { errcode: 0, errmsg: 'ok', openid, session_key: /^[A-Za-z0-9+/]{22}==$/ })
  t.not(reset.session_key, old)
  t.equal(sim.sessionKeyOf('alice'), reset.session_key)
  t.match(await checkSession(sim, token, openid, sign(old)), { errcode: 87009 })
  t.match(await checkSession(sim, token, openid, sign(reset.session_key)), { errcode: 0 })
  t.match((await call(`${sim.url}/wxa/resetusersessionkey?${sessionQuery(token, openid, sign(old))}`)).body, { errcode: 87009 }, 'the old key no longer signs')
  t.match((await call(`${sim.url}/wxa/resetusersessionkey?${sessionQuery(token, openid, sign(reset.session_key), 'sha1')}`)).body, { errcode: 40097 })
  t.match(decrypt(reset.session_key, sim.encryptFor('alice', { a: 1 })), { a: 1 }, 'data is now encrypted under the new key')
})

test('getuserphonenumber: a number derived from the user, each code once, special users', async (t) => {
  const clock = T0 + 123_456
  const sim = await startSim(t, { now: () => clock })
  const token = (await stableToken(sim)).access_token
  const alice = sim.phoneOf('alice')
  t.match(alice, { purePhoneNumber: /^13\d{9}$/, countryCode: '86' })
  t.equal(alice.phoneNumber, alice.purePhoneNumber)
  t.not(sim.phoneOf('bob').purePhoneNumber, alice.purePhoneNumber)

  t.same(await phone(sim, token, { code: 'alice' }), {
    errcode: 0, errmsg: 'ok', phone_info: { ...alice, watermark: { timestamp: Math.floor(clock / 1000), appid: APPID } }
  })
  t.same(sim.calls.at(-1), { path: '/wxa/business/getuserphonenumber', code: 'alice', errcode: 0, appid: APPID })
  t.match(await phone(sim, token, { code: 'alice' }), { errcode: 40029 }, 'a code works once')
  t.match(await phone(sim, token, { code: 'alice.2' }), { phone_info: alice })
  t.match(await phone(sim, token, { code: 'bob.1' }), { phone_info: sim.phoneOf('bob') })

  const cases: Array<[unknown, number]> = [
    [{ code: 'invalid.1' }, 40029],
    [{ code: 'limit.1' }, 45011],
    [{ code: 'busy.1' }, -1],
    [{ code: '' }, 40029],
    [{ code: '.x' }, 40029],
    [{ code: 42 }, 40029],
    [{}, 40029],
    ['not json', 47001],
    [null, 47001]
  ]
  for (const [body, errcode] of cases) {
    t.match(await phone(sim, token, body === null ? 'null' : body), { errcode }, JSON.stringify(body))
  }
  t.match(await phone(sim, token, { code: 'busy.1' }), { errcode: 0, phone_info: sim.phoneOf('busy') }, 'busy succeeds on the second try')
  t.same(sim.calls.filter((c) => c.code === 'busy.1').map((c) => c.errcode), [-1, 0])
  t.match(sim.calls.find((c) => c.errcode === 40029 && c.code === null), { path: '/wxa/business/getuserphonenumber', appid: APPID })
})

test('/dev/encrypt encrypts a JSON object with a watermark under the session_key last issued', async (t) => {
  const clock = T0
  const sim = await startSim(t, { now: () => clock })
  await logIn(sim, 'alice')
  const res = await call(`${sim.url}/dev/encrypt?user=alice`, { body: { nickName: 'Alice', watermark: 'overwritten' } })
  t.equal(res.status, 200)
  t.equal(Buffer.from(res.body.iv, 'base64').length, 16)
  t.same(decrypt(sim.sessionKeyOf('alice') as string, res.body as { encryptedData: string, iv: string }), {
    nickName: 'Alice', watermark: { timestamp: Math.floor(T0 / 1000), appid: APPID }
  })
  t.same(sim.calls.at(-1), { path: '/dev/encrypt', code: null, errcode: 0, appid: APPID })
  t.equal(res.body.rawData, '{"nickName":"Alice"}', 'rawData as wx.getUserInfo gives it')
  t.equal(res.body.signature, createHash('sha1').update(`{"nickName":"Alice"}${sim.sessionKeyOf('alice') as string}`).digest('hex'))
  t.same(decrypt(sim.sessionKeyOf('alice') as string, sim.encryptFor('alice', { x: [1] })), { x: [1], watermark: { timestamp: Math.floor(T0 / 1000), appid: APPID } })

  const bob = await call(`${sim.url}/dev/encrypt?user=bob`, { body: {} })
  t.equal(bob.status, 404)
  t.equal(bob.body.errcode, 40400)
  t.equal((await call(`${sim.url}/dev/encrypt`, { body: {} })).status, 404, 'no user')
  const otherApp = await call(`${sim.url}/dev/encrypt?user=alice&appid=wx1111111111111111`, { body: {} })
  t.equal(otherApp.status, 404, 'no session_key in an unknown appid')
  t.same(sim.calls.at(-1), { path: '/dev/encrypt', code: null, errcode: 40400 })
  for (const body of ['[1]', 'nope', '"text"']) {
    const bad = await call(`${sim.url}/dev/encrypt?user=alice`, { body })
    t.equal(bad.status, 400, body)
    t.equal(bad.body.errcode, 47001, body)
  }
  t.throws(() => sim.encryptFor('bob', {}), /no session_key/)
})
