import { STATUS_CODES, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { test } from 'tap'
import { keyNames } from '../../lib/store/redis-layout.js'
import { digest } from '../../lib/ids.js'
import { refreshTokens } from '../../lib/refresh-tokens.js'
import authRoutes from '../../routes/auth.js'
import { APPID, JWT_SECRET, SECRET, bearer, buildApp, freePort, login, me, redisClient, refresh, refusedWithout, startRedis, startSim, type Pair } from '../helper.js'

const decode = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>

test('POST /auth/login', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })

  t.test('returns a token pair and never the session_key', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'alice' } })
    t.equal(res.statusCode, 200)
    const body = res.json<Pair>()
    t.same(Object.keys(body).sort(), ['accessToken', 'expiresIn', 'openid', 'refreshExpiresIn', 'refreshToken', 'tokenType', 'unionid'])
    t.match(body, { tokenType: 'Bearer', expiresIn: 900, refreshExpiresIn: 2592000, openid: sim.openidOf('alice'), unionid: sim.unionidOf('alice') })
    t.notMatch(res.body, sim.sessionKeyOf('alice') as string)
    t.notMatch(res.body, /session_?key/i)
    const claims = decode(body.accessToken)
    t.match(claims, { sub: sim.openidOf('alice'), openid: sim.openidOf('alice'), unionid: sim.unionidOf('alice'), iss: 'fastify-wechat-auth', aud: APPID, sid: String, jti: String })
    t.equal((claims.exp as number) - (claims.iat as number), 900)
    t.match(body.refreshToken, new RegExp(`^[\\w-]{16}\\.${claims.sid as string}\\.0\\.[\\w-]{43}\\.[\\w-]{22}$`), 'tag, session, generation 0, secret, mac')
  })

  t.test('omits unionid when WeChat sends none', async (t) => {
    const body = await login(app, 'nounion-carl')
    t.notOk('unionid' in body)
    t.notOk('unionid' in decode(body.accessToken))
    const me = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${body.accessToken}` } })
    t.equal(me.statusCode, 200)
    t.notOk('unionid' in me.json(), 'nor in GET /me')
  })

  t.test('maps every WeChat error to its code', async (t) => {
    const cases: Array<[string, number, string]> = [
      ['invalid.1', 401, 'WX_CODE_INVALID'],
      ['risky.1', 403, 'WX_USER_BLOCKED'],
      ['limit.1', 429, 'WX_RATE_LIMITED'],
      ['garbage.1', 502, 'WX_BAD_RESPONSE']
    ]
    for (const [code, status, errCode] of cases) {
      const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code } })
      t.equal(res.statusCode, status, code)
      const body = res.json()
      t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${code}: Fastify's error shape, nothing more`)
      t.match(body, { statusCode: status, code: errCode, error: STATUS_CODES[status], message: String }, code)
    }
    const busy = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'busy.1' } })
    t.equal(busy.statusCode, 200, '-1 is retried once and succeeds')
  })

  t.test('a replayed code gets WX_CODE_USED without a call to WeChat', async (t) => {
    await login(app, 'dora.1')
    const calls = sim.calls.length
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'dora.1' } })
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'WX_CODE_USED')
    t.equal(sim.calls.length, calls, 'WeChat not called')
    const marker = keyNames(redis.prefix).code(digest(`${APPID}\u0000dora.1`))
    t.ok(await redisClient(t, redis.url).pttl(marker) > 9 * 60_000, 'an accepted code is remembered for 10 minutes, longer than WeChat keeps it')
  })

  t.test('concurrent duplicates: one login, the other WX_CODE_USED, one upstream call', async (t) => {
    const calls = sim.calls.length
    const [a, b] = await Promise.all([0, 1].map(async () => await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'eve.1' } })))
    t.same([a?.statusCode, b?.statusCode].sort(), [200, 401])
    t.equal(sim.calls.length, calls + 1)
  })

  t.test('refuses bad input with 4xx and a code', async (t) => {
    const post = async (payload: string, type = 'application/json') =>
      await app.inject({ method: 'POST', url: '/auth/login', payload, headers: { 'content-type': type } })
    const cases: Array<[string, string, number, string]> = [
      ['{}', 'application/json', 400, 'FST_ERR_VALIDATION'],
      ['{"code":""}', 'application/json', 400, 'FST_ERR_VALIDATION'],
      ['{"code":"has space"}', 'application/json', 400, 'FST_ERR_VALIDATION'],
      ['{"code":"中文"}', 'application/json', 400, 'FST_ERR_VALIDATION'],
      ['{"code":123}', 'application/json', 400, 'FST_ERR_VALIDATION'],
      ['{"code":"a","extra":1}', 'application/json', 400, 'FST_ERR_VALIDATION'],
      ['[]', 'application/json', 400, 'FST_ERR_VALIDATION'],
      ['', 'application/json', 400, 'FST_ERR_VALIDATION'],
      ['{"code":', 'application/json', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'],
      ['{"__proto__":{"x":1},"code":"a"}', 'application/json', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'],
      ['code=alice', 'application/x-www-form-urlencoded', 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE'],
      ['{"code":"alice"}', 'text/plain', 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE'],
      ['{"code":"alice"}', 'text/plain; charset=utf-8', 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE'],
      [JSON.stringify({ code: 'a'.repeat(5000) }), 'application/json', 413, 'FST_ERR_CTP_BODY_TOO_LARGE']
    ]
    for (const [payload, type, status, code] of cases) {
      const res = await post(payload, type)
      t.equal(res.statusCode, status, payload.slice(0, 40))
      t.equal(res.json().code, code, payload.slice(0, 40))
    }
  })

  t.test('refuses a query string, which it would otherwise ignore, with 400 FST_ERR_VALIDATION', async (t) => {
    const calls = sim.calls.length
    for (const query of ['appid=wx0000000000000000', 'x=1&x=2', 'x']) {
      const res = await app.inject({ method: 'POST', url: `/auth/login?${query}`, payload: { code: `query.${calls}` } })
      t.same([res.statusCode, res.json().code], [400, 'FST_ERR_VALIDATION'], query)
    }
    t.equal(sim.calls.length, calls, 'WeChat not called')
  })

  t.test('a device name is shown to its user and to operators: any script and emoji pass; control characters, bidi controls and lone surrogates are refused', async (t) => {
    const names = ['iPhone 15 Pro', '华为 Mate 60 Pro', '小米的📱', 'Pixel 8 👨‍👩‍👧', 'Ünïcödé Ω', '']
    for (const [i, deviceName] of names.entries()) {
      const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: `nina.${i}`, deviceName } })
      t.equal(res.statusCode, 200, JSON.stringify(deviceName))
      if (i === 2) {
        const listed = (await app.inject({ url: '/auth/sessions', headers: bearer(res.json<Pair>().accessToken) })).json<{ sessions: Array<{ current: boolean, deviceName: string }> }>()
        t.equal(listed.sessions.find((s) => s.current)?.deviceName, '小米的📱', 'listed as given')
      }
    }
    const calls = sim.calls.length
    const spoofs = ['a\u0000b', 'red\u001b[31m', 'tab\there', 'two\nlines', 'del\u007f', 'c1\u0085', 'invoice\u202egpj.exe', 'lre\u202aabc', 'rlo\u202e', 'iso\u2066x\u2069',
      'lone \ud800', 'lone \udfff', 'backwards \udc00\ud83d']
    for (const [i, deviceName] of spoofs.entries()) {
      // JSON.stringify sends control characters and lone surrogates as \u escapes: parsed, the body holds them.
      const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: `olga.${i}`, deviceName } })
      t.same([res.statusCode, res.json().code], [400, 'FST_ERR_VALIDATION'], JSON.stringify(deviceName))
    }
    t.equal(sim.calls.length, calls, 'WeChat not called for a refused name')
  })
})

test('WeChat failures: timeout 504, down 503, bad credentials 502; a transient failure leaves the code usable', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t, { slowMs: 5000 })
  const slow = await buildApp(t, { sim, redisServer: redis, config: { WECHAT_TIMEOUT_MS: 300 } })
  const started = Date.now()
  const res = await slow.inject({ method: 'POST', url: '/auth/login', payload: { code: 'slow.1' } })
  t.equal(res.statusCode, 504)
  t.equal(res.json().code, 'WX_TIMEOUT')
  t.ok(Date.now() - started < 2000, 'answered at the deadline')

  const down = await buildApp(t, { sim, redisServer: redis, config: { WECHAT_API_BASE: `http://127.0.0.1:${await freePort()}` } })
  const r2 = await down.inject({ method: 'POST', url: '/auth/login', payload: { code: 'x.1' } })
  t.equal(r2.statusCode, 503)
  t.equal(r2.json().code, 'WX_UNAVAILABLE')

  const wrong = await buildApp(t, { sim, redisServer: redis, config: { WECHAT_SECRET: 'not-the-right-secret-000' } })
  const r3 = await wrong.inject({ method: 'POST', url: '/auth/login', payload: { code: 'x.2' } })
  t.equal(r3.statusCode, 502)
  t.equal(r3.json().code, 'WX_CREDENTIALS_REJECTED')
  t.notMatch(r3.body, /not-the-right-secret/)

  // An upstream that is busy twice (so the one retry also fails), then healthy.
  let hits = 0
  const flaky = createServer((_req, res) => {
    hits++
    res.end(hits <= 2 ? '{"errcode":-1,"errmsg":"busy"}' : '{"openid":"o-flaky","session_key":"c2Vzc2lvbi1rZXktMTIzNA=="}')
  })
  await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve))
  t.teardown(() => flaky.close())
  const app = await buildApp(t, { sim, redisServer: redis, config: { WECHAT_API_BASE: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}` } })
  const first = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'retry.1' } })
  t.equal(first.statusCode, 503)
  t.equal(first.json().code, 'WX_UNAVAILABLE')
  const second = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'retry.1' } })
  t.equal(second.statusCode, 200, 'the same code may be tried again after a transient failure')
  t.equal(hits, 3)
})

test('POST /auth/refresh', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })

  t.test('rotates: a new pair, the old refresh token is spent', async (t) => {
    const first = await login(app, 'alice.r1')
    const res = await refresh(app, first.refreshToken)
    t.equal(res.statusCode, 200)
    const second = res.json<Pair>()
    t.not(second.refreshToken, first.refreshToken)
    t.not(second.accessToken, first.accessToken)
    t.match(second, { tokenType: 'Bearer', expiresIn: 900, openid: first.openid, unionid: first.unionid })
    t.ok(second.refreshExpiresIn > 2591990 && second.refreshExpiresIn <= 2592000)
    t.equal(decode(second.accessToken).sid, decode(first.accessToken).sid, 'same session')
    t.equal((await me(app, second.accessToken)).statusCode, 200)
    t.equal((await refresh(app, second.refreshToken)).statusCode, 200, 'the successor works once too')
  })

  t.test('a retry of the predecessor within the grace window returns the same successor', async (t) => {
    const first = await login(app, 'alice.r2')
    const a = (await refresh(app, first.refreshToken)).json<Pair>()
    const b = await refresh(app, first.refreshToken)
    t.equal(b.statusCode, 200)
    t.equal(b.json<Pair>().refreshToken, a.refreshToken, 'same successor, not a sibling')
    t.equal((await me(app, b.json<Pair>().accessToken)).statusCode, 200)
    const next = await refresh(app, a.refreshToken)
    t.equal(next.statusCode, 200, 'the successor is still current')
  })

  t.test('concurrent refreshes with one token all get the same successor', async (t) => {
    const first = await login(app, 'alice.r3')
    const all = await Promise.all([0, 1, 2, 3].map(async () => await refresh(app, first.refreshToken)))
    t.same(all.map((r) => r.statusCode), [200, 200, 200, 200])
    t.equal(new Set(all.map((r) => r.json<Pair>().refreshToken)).size, 1)
  })

  t.test('reuse of an older token revokes the whole session', async (t) => {
    const first = await login(app, 'alice.r4')
    const other = await login(app, 'alice.r5')
    const second = (await refresh(app, first.refreshToken)).json<Pair>()
    const third = (await refresh(app, second.refreshToken)).json<Pair>()
    const reuse = await refresh(app, first.refreshToken)
    t.equal(reuse.statusCode, 401)
    t.equal(reuse.json().code, 'AUTH_REFRESH_REUSED')
    for (const token of [first.accessToken, second.accessToken, third.accessToken]) {
      const res = await me(app, token)
      t.equal(res.json().code, 'AUTH_TOKEN_REVOKED', 'access tokens of the session stop working')
    }
    t.equal((await refresh(app, third.refreshToken)).json().code, 'AUTH_REFRESH_INVALID', 'its current refresh token too')
    t.equal((await me(app, other.accessToken)).statusCode, 200, 'the user\'s other session lives on')
  })

  t.test('reuse is recognised however many generations back the token is', async (t) => {
    const many = await buildApp(t, { sim, redisServer: redis, config: { RATE_LIMIT_REFRESH_MAX: 1000 } })
    const chain = [await login(many, 'alice.r8')]
    for (let i = 0; i < 40; i++) {
      const res = await refresh(many, chain[chain.length - 1]?.refreshToken as string)
      t.equal(res.statusCode, 200)
      chain.push(res.json<Pair>())
    }
    const current = chain[chain.length - 1] as Pair
    t.match(current.refreshToken, /\.40\.[\w-]{43}\.[\w-]{22}$/, 'the generation counts the rotations')
    const reuse = await refresh(many, chain[1]?.refreshToken as string)
    t.equal(reuse.json().code, 'AUTH_REFRESH_REUSED', '39 generations behind: reuse')
    t.equal((await me(many, current.accessToken)).json().code, 'AUTH_TOKEN_REVOKED', 'the session is revoked')
    t.equal((await refresh(many, current.refreshToken)).json().code, 'AUTH_REFRESH_INVALID')
  })

  t.test('after a JWT_SECRET change, JWT_SECRET_PREVIOUS keeps the grace window and reuse detection for tokens issued before it', async (t) => {
    const NEW_SECRET = 'the-next-jwt-secret-which-is-long-enough-9876'
    const changed = await buildApp(t, { sim, redisServer: redis, config: { JWT_SECRET: NEW_SECRET, JWT_SECRET_PREVIOUS: JWT_SECRET } })
    const without = await buildApp(t, { sim, redisServer: redis, config: { JWT_SECRET: NEW_SECRET } })
    for (const [gateway, recognised] of [[without, false], [changed, true]] as const) {
      const t0 = await login(app, `alice.k${String(recognised)}`)
      const t1 = (await refresh(app, t0.refreshToken)).json<Pair>()
      const t2 = (await refresh(app, t1.refreshToken)).json<Pair>()
      const retry = await refresh(gateway, t1.refreshToken)
      t.equal(retry.statusCode, recognised ? 200 : 401, 'the predecessor in the grace window')
      if (recognised) t.equal(retry.json<Pair>().refreshToken, t2.refreshToken, 'gets the successor issued before the change')
      const reuse = await refresh(gateway, t0.refreshToken)
      t.equal(reuse.json().code, recognised ? 'AUTH_REFRESH_REUSED' : 'AUTH_REFRESH_INVALID', 'an older token')
      t.equal((await refresh(gateway, t2.refreshToken)).statusCode, recognised ? 401 : 200, recognised ? 'reuse revoked the session' : 'unrecognised: the session lives on')
    }
  })

  t.test('unknown, malformed or forged tokens get AUTH_REFRESH_INVALID and harm nothing', async (t) => {
    const live = await login(app, 'alice.r6')
    const second = (await refresh(app, live.refreshToken)).json<Pair>()
    const third = (await refresh(app, second.refreshToken)).json<Pair>()
    const [tag, sid] = third.refreshToken.split('.') as [string, string]
    const forge = (generation: number): string => `${tag}.${sid}.${generation}.${'A'.repeat(43)}.${'A'.repeat(22)}`
    // Even with the key, older tokens do not give the current one: each rotation's nonce is in Redis.
    const withKey = refreshTokens(app.wechatAuthConfig.jwtSecret)
    // Anyone who saw an access token knows the session id: a forged token naming an older
    // generation must not pass for reuse, or it would log the owner out.
    for (const token of ['nope', forge(0), forge(1), forge(2), forge(3), forge(99), `${third.refreshToken}x`,
      withKey.successor(second.refreshToken, 'a-guessed-nonce'), withKey.successor(live.refreshToken, 'a-guessed-nonce'),
      third.refreshToken.replace(`.${sid}.`, `.${'B'.repeat(12)}.`)]) {
      const res = await refresh(app, token)
      t.equal(res.statusCode, 401)
      t.equal(res.json().code, 'AUTH_REFRESH_INVALID', token)
    }
    t.equal((await refresh(app, third.refreshToken)).statusCode, 200, 'the real token still works')
    const bad = await app.inject({ method: 'POST', url: '/auth/refresh', payload: {} })
    t.equal(bad.json().code, 'FST_ERR_VALIDATION')
  })

  t.test('with no grace window, a second use is reuse', async (t) => {
    const strict = await buildApp(t, { sim, redisServer: redis, config: { REFRESH_GRACE_SECONDS: 0 } })
    const first = await login(strict, 'alice.r7')
    const second = await refresh(strict, first.refreshToken)
    t.equal(second.statusCode, 200)
    // The new pair reached the client, which uses it: the old token coming back is not a lost answer.
    t.equal((await me(strict, second.json().accessToken)).statusCode, 200)
    // The window is measured by Redis's clock, in ms: a retry in the rotation's own millisecond is
    // still within a window of 0. Wait until Redis's clock has left it (a millisecond at most).
    const admin = redisClient(t, redis.url)
    const redisMs = async (): Promise<number> => {
      const [s, us] = await admin.time()
      return Number(s) * 1000 + Math.floor(Number(us) / 1000)
    }
    const rotatedBy = await redisMs()
    for (let i = 0; i < 1000 && await redisMs() <= rotatedBy; i++);
    const retry = await refresh(strict, first.refreshToken)
    t.equal(retry.statusCode, 401)
    t.equal(retry.json().code, 'AUTH_REFRESH_REUSED')
    t.equal((await me(strict, first.accessToken)).json().code, 'AUTH_TOKEN_REVOKED', 'the session is ended')
  })
})

test('POST /auth/logout and GET /auth/me', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })

  t.test('me describes the token', async (t) => {
    const p = await login(app, 'frank.1')
    const res = await me(app, p.accessToken)
    t.equal(res.statusCode, 200)
    const claims = decode(p.accessToken)
    t.equal(claims.sid, p.refreshToken.split('.')[1], 'the session of the pair')
    t.same(res.json(), {
      openid: sim.openidOf('frank'),
      unionid: sim.unionidOf('frank'),
      sessionId: claims.sid,
      issuedAt: new Date((claims.iat as number) * 1000).toISOString(),
      expiresAt: new Date((claims.exp as number) * 1000).toISOString(),
      roles: [],
      permissions: [],
      steppedUpAt: null
    })
  })

  t.test('logout ends this session at once, and only this one', async (t) => {
    const phone = await login(app, 'gwen.1')
    const laptop = await login(app, 'gwen.2')
    const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(phone.accessToken) })
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    t.equal((await me(app, phone.accessToken)).json().code, 'AUTH_TOKEN_REVOKED')
    t.equal((await refresh(app, phone.refreshToken)).json().code, 'AUTH_REFRESH_INVALID')
    t.equal((await me(app, laptop.accessToken)).statusCode, 200)
    const again = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(phone.accessToken) })
    t.equal(again.json().code, 'AUTH_TOKEN_REVOKED', 'a revoked token cannot log out again')
  })

  t.test('logout with allDevices ends every session of the user, not others', async (t) => {
    const a = await login(app, 'hugo.1')
    const b = await login(app, 'hugo.2')
    const other = await login(app, 'ines.1')
    const rotated = (await refresh(app, b.refreshToken)).json<Pair>()
    const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(a.accessToken), payload: { allDevices: true } })
    t.equal(res.statusCode, 204)
    for (const token of [a.accessToken, b.accessToken, rotated.accessToken]) t.equal((await me(app, token)).json().code, 'AUTH_TOKEN_REVOKED')
    t.equal((await refresh(app, rotated.refreshToken)).json().code, 'AUTH_REFRESH_INVALID')
    t.equal((await me(app, other.accessToken)).statusCode, 200)
  })

  t.test('logout refuses a query string (?allDevices=true would have ended this session only)', async (t) => {
    const a = await login(app, 'kate.1')
    const b = await login(app, 'kate.2')
    const res = await app.inject({ method: 'POST', url: '/auth/logout?allDevices=true', headers: bearer(a.accessToken) })
    t.same([res.statusCode, res.json().code], [400, 'FST_ERR_VALIDATION'])
    for (const p of [a, b]) t.equal((await me(app, p.accessToken)).statusCode, 200, 'no session ended')
    t.same((await app.inject({ method: 'POST', url: '/auth/refresh?x=1', payload: { refreshToken: a.refreshToken } })).json().code, 'FST_ERR_VALIDATION', 'nor does refresh take one')
    t.equal((await refresh(app, a.refreshToken)).statusCode, 200, 'the refused refresh spent nothing')
  })

  t.test('logout accepts an empty JSON body; refuses unknown fields', async (t) => {
    const p = await login(app, 'jack.1')
    const bad = await app.inject({ method: 'POST', url: '/auth/logout', headers: { ...bearer(p.accessToken), 'content-type': 'application/json' }, payload: '{"everything":true}' })
    t.equal(bad.json().code, 'FST_ERR_VALIDATION')
    const ok = await app.inject({ method: 'POST', url: '/auth/logout', headers: { ...bearer(p.accessToken), 'content-type': 'application/json' }, payload: '' })
    t.equal(ok.statusCode, 204)
  })

  t.test('protected routes need a token', async (t) => {
    const missing = await app.inject({ method: 'GET', url: '/auth/me' })
    t.equal(missing.statusCode, 401)
    t.equal(missing.json().code, 'AUTH_TOKEN_MISSING')
    const logout = await app.inject({ method: 'POST', url: '/auth/logout' })
    t.equal(logout.json().code, 'AUTH_TOKEN_MISSING')
  })
})

test('rate limits per client IP, with retry-after, shared by instances on one Redis', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const config = { RATE_LIMIT_LOGIN_MAX: 2, RATE_LIMIT_REFRESH_MAX: 3 }
  const a = await buildApp(t, { sim, redisServer: redis, config })
  const b = await buildApp(t, { sim, redisServer: redis, config })
  const post = async (app: typeof a, url: string, payload: object, ip = '10.0.0.1') =>
    await app.inject({ method: 'POST', url, payload, remoteAddress: ip })
  t.equal((await post(a, '/auth/login', { code: 'invalid.a' })).statusCode, 401)
  t.equal((await post(b, '/auth/login', { code: 'invalid.b' })).statusCode, 401)
  const limited = await post(a, '/auth/login', { code: 'kim.1' })
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0, 'retry-after set')
  t.equal((await post(a, '/auth/login', { code: 'kim.1' }, '10.0.0.2')).statusCode, 200, 'another IP has its own budget')

  for (let i = 0; i < 3; i++) t.equal((await post(b, '/auth/refresh', { refreshToken: 'x' })).statusCode, 401)
  const r = await post(a, '/auth/refresh', { refreshToken: 'x' })
  t.equal(r.statusCode, 429)
  t.equal(r.json().code, 'RATE_LIMITED')
})

test('several mini programs in one gateway', async (t) => {
  const redis = await startRedis(t)
  const appB = { appid: 'wx00000000000000bb', secret: 'secret-of-app-b-0123456789' }
  const sim = await startSim(t, { apps: [{ appid: APPID, secret: SECRET }, appB] })
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    apps: [appB],
    config: { RATE_LIMIT_LOGIN_MAX: 3 },
    extend: (host) => host.register(async (scope) => {
      scope.addHook('onRequest', scope.authenticateFor(appB.appid))
      scope.get('/b-only', async (request) => ({ aud: request.wechatAuthUser.aud }))
    })
  })
  const loginAs = async (code: string, appid?: string, ip = '10.1.0.1') =>
    await app.inject({ method: 'POST', url: '/auth/login', payload: appid === undefined ? { code } : { code, appid }, remoteAddress: ip })

  const none = await loginAs('alice.m0')
  t.equal(none.statusCode, 400)
  t.equal(none.json().code, 'WX_APP_UNKNOWN', 'the appid is required when several are served')
  const unknown = await loginAs('alice.m0', 'wx99999999999999ff', '10.1.0.2')
  t.equal(unknown.json().code, 'WX_APP_UNKNOWN')
  const junk = await loginAs('alice.m0', 'not an appid', '10.1.0.2')
  t.equal(junk.json().code, 'WX_APP_UNKNOWN')
  t.equal(sim.calls.length, 0, 'WeChat was not called')

  const a = (await loginAs('alice.m1', APPID)).json<Pair>()
  const b = (await loginAs('alice.m2', appB.appid)).json<Pair>()
  t.equal(decode(a.accessToken).aud, APPID)
  t.equal(decode(b.accessToken).aud, appB.appid)
  t.equal(a.openid, sim.openidOf('alice', APPID))
  t.equal(b.openid, sim.openidOf('alice', appB.appid))
  t.not(a.openid, b.openid, 'openids are per mini program')
  t.equal(a.unionid, b.unionid, 'the unionid is the same')
  t.match(sim.calls.at(-1), { appid: appB.appid }, 'each app\'s code goes to WeChat with its own credentials')

  const rotated = await refresh(app, b.refreshToken)
  t.equal(rotated.statusCode, 200)
  t.equal(decode(rotated.json<Pair>().accessToken).aud, appB.appid, 'a refresh keeps the mini program')
  t.equal((await me(app, a.accessToken)).statusCode, 200, 'generic routes take any served app\'s token')

  const wrong = await app.inject({ method: 'GET', url: '/b-only', headers: bearer(a.accessToken) })
  t.equal(wrong.statusCode, 403)
  t.equal(wrong.json().code, 'AUTH_WRONG_APP')
  const right = await app.inject({ method: 'GET', url: '/b-only', headers: bearer(b.accessToken) })
  t.same(right.json(), { aud: appB.appid })

  // Sessions are per mini program: logging out everywhere in B leaves A's session alone.
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(rotated.json<Pair>().accessToken), payload: { allDevices: true } })
  t.equal((await me(app, a.accessToken)).statusCode, 200)

  // Rate limits per IP and mini program: A's budget (3, one spent by the unknown-appid try's IP
  // is another IP) is spent here, B's is not.
  const ip = '10.1.0.9'
  for (let i = 0; i < 3; i++) t.equal((await loginAs(`bob.a${i}`, APPID, ip)).statusCode, 200)
  t.equal((await loginAs('bob.a3', APPID, ip)).json().code, 'RATE_LIMITED')
  t.equal((await loginAs('bob.b0', appB.appid, ip)).statusCode, 200, 'B has its own budget')

  t.test('tokens of a mini program the gateway no longer serves are refused', async (t) => {
    const other = await buildApp(t, { sim, redisServer: redis })
    t.equal((await me(other, b.accessToken)).json().code, 'AUTH_TOKEN_INVALID')
    const fresh = (await loginAs('carol.b1', appB.appid, '10.1.0.3')).json<Pair>()
    const res = await refresh(other, fresh.refreshToken)
    t.equal(res.json().code, 'AUTH_REFRESH_INVALID', 'its sessions cannot be refreshed')
    t.equal((await me(app, fresh.accessToken)).json().code, 'AUTH_TOKEN_REVOKED', 'and are ended')
  })
})

test('WECHAT_APPS in the environment configures the mini programs', async (t) => {
  const sim = await startSim(t, { apps: [{ appid: APPID, secret: SECRET }, { appid: 'wx00000000000000cc', secret: 'secret-of-app-c-0123456789' }] })
  const app = await buildApp(t, { sim, config: { WECHAT_APPID: undefined, WECHAT_SECRET: undefined, WECHAT_APPS: JSON.stringify(sim.apps) } })
  t.same(app.wechat.appids, [APPID, 'wx00000000000000cc'])
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'carol', appid: 'wx00000000000000cc' } })
  t.equal(decode(res.json<Pair>().accessToken).aud, 'wx00000000000000cc')
})

test('unknown routes under the prefix answer a coded 404', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim })
  const { accessToken } = await login(app, 'alice.nf')
  for (const [method, url] of [['GET', '/auth/nope?secret=x'], ['GET', '/auth/login'], ['POST', '/auth/wechat/nope']] as const) {
    const res = await app.inject({ method, url, headers: bearer(accessToken) })
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().code, 'ROUTE_NOT_FOUND', url)
    t.notMatch(res.body, /secret=x/, 'the query string is not echoed')
  }
  const probe = await app.inject({ method: 'POST', url: '/auth/wechat/nope' })
  t.equal(probe.json().code, 'AUTH_TOKEN_MISSING', 'under /auth/wechat everything needs a token, even to learn what exists')
  t.equal((await app.inject('/elsewhere')).json().code, undefined, 'outside the prefix the host answers')
})

test('registered alone, without the plugins it needs, the auth routes refuse the boot naming the one missing', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await refusedWithout(t, app, authRoutes, { prefix: '/auth' }, 'wechat-auth-config', 'wechat-auth-routes')
})
