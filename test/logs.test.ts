// Secrets never reach a log line: session_key, the app secret, the JWT secret, login codes,
// refresh tokens and access tokens, across success and failure paths, at the most verbose level;
// nor H5 login's codes, states and cookies, nor cookie mode's refresh cookie (nor an audit event).
import Fastify, { type FastifyInstance } from 'fastify'
import { test } from 'tap'
import { request } from 'undici'
import { notFoundHandler } from '../http/error-handler.js'
import { adminServerOptions } from '../http/admin-server-options.js'
import { serverOptions } from '../http/server-options.js'
import type { AuditEvent } from '../lib/audit.js'
import adminRoutes from '../routes/admin.js'
import { JWT_SECRET, SECRET, bearer, buildApp, login, refresh, startRedis, startSim, type Pair } from './helper.js'

test('no secret appears in any log line', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t, { slowMs: 2000 })
  const logs: string[] = []
  const app = await buildApp(t, { sim, redisServer: redis, logs, config: { WECHAT_TIMEOUT_MS: 300 } })

  const codes = ['alice.k0de1', 'busy.k0de2', 'invalid.k0de3', 'risky.k0de4', 'garbage.k0de5', 'slow.k0de6', 'limit.k0de7']
  const pairs: Pair[] = []
  for (const code of codes) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code } })
    if (res.statusCode === 200) pairs.push(res.json<Pair>())
  }
  await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'alice.k0de1' } }) // replay
  const p = pairs[0] as Pair
  const rotated = (await refresh(app, p.refreshToken)).json<Pair>()
  await refresh(app, p.refreshToken) // grace
  const second = await login(app, 'alice.k0de8')
  const next = (await refresh(app, second.refreshToken)).json<Pair>()
  await refresh(app, (await refresh(app, next.refreshToken)).json<Pair>().refreshToken)
  await refresh(app, second.refreshToken) // reuse -> revoked, logged
  await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(rotated.accessToken) })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(rotated.accessToken) })
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: `${p.refreshToken}x` } })
  await redis.stop()
  await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'alice.k0de9' } })
  await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(second.accessToken) })

  const text = logs.join('\n')
  t.ok(logs.length > 40, `captured ${logs.length} lines`)
  t.match(text, /refresh token reuse detected/, 'the reuse warning was logged')
  t.match(text, /WeChat answered with an error/, 'WeChat errors were logged')
  t.match(text, /STORE_UNAVAILABLE/, 'the outage was logged')
  const secrets: Array<[string, string]> = [
    ['app secret', SECRET],
    ['JWT secret', JWT_SECRET],
    ...['alice', 'busy'].map((u): [string, string] => [`session_key of ${u}`, sim.sessionKeyOf(u) as string]),
    ...codes.map((c): [string, string] => ['login code', c]),
    ['login code', 'alice.k0de8'],
    ['login code', 'alice.k0de9'],
    ...[p, rotated, second, next].flatMap((x): Array<[string, string]> => [
      ['refresh token', x.refreshToken],
      ['access token signature', x.accessToken.split('.')[2] as string]
    ])
  ]
  for (const [what, value] of secrets) {
    t.notOk(text.includes(value), `no ${what} in the logs`)
  }
  // `k`, not a hex digit: a request id (a UUID) could hold `c0de` and a digit by chance.
  t.notOk(/k0de\d/.test(text), 'no fragment of any login code')
})

/** A gateway with H5 login (the simulator's official account) for the page, its log lines captured. */
async function h5Gateway (t: Parameters<typeof startSim>[0], redisOpts: { own?: boolean }, config: Record<string, string>) {
  const redis = await startRedis(t, redisOpts)
  const sim = await startSim(t)
  const logs: string[] = []
  const page = 'https://h5.example.com/app/'
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    logs,
    config: { WECHAT_OA_APPID: sim.officialAccount.appid, WECHAT_OA_SECRET: sim.officialAccount.secret, WECHAT_OA_AUTHORIZE_URL: `${sim.url}/connect/oauth2/authorize`, H5_RETURN_URLS: page, ...config }
  })
  return { redis, sim, logs, page, app }
}

test('no H5 code, state, cookie value or token in any log line or audit event (H5 login, cookie mode)', async (t) => {
  const { redis, sim, logs, app } = await h5Gateway(t, { own: true }, { REFRESH_COOKIE: 'web,h5' })
  const events: AuditEvent[] = []
  app.wechatAuthEvents.on('audit', (e) => events.push(e))
  const secrets: Array<[string, string]> = [['official account secret', sim.officialAccount.secret]]
  const keep = (what: string, value: string | undefined | null): string => {
    if (value !== undefined && value !== null && value !== '') secrets.push([what, value])
    return value ?? ''
  }

  /** One H5 login of `user` up to the page's post: the browser's cookie, code and state (all kept as secrets). */
  const start = async (user: string, scope = 'snsapi_base'): Promise<{ cookie: string, code: string, state: string }> => {
    const res = await app.inject({ method: 'GET', url: '/auth/h5/authorize', query: { scope } })
    const set = res.cookies[0] as { name: string, value: string }
    keep('H5 cookie', set.value)
    const wechat = await request(`${String(res.headers.location).replace('#wechat_redirect', '')}&user=${user}`)
    await wechat.body.dump()
    const back = new URL(String(wechat.headers.location))
    return { cookie: `${set.name}=${set.value}`, code: keep('H5 code', back.searchParams.get('code')), state: keep('H5 state', back.searchParams.get('state')) }
  }
  const post = async (body: Record<string, string>, cookie: string) => await app.inject({ method: 'POST', url: '/auth/h5/login', payload: body, headers: { cookie } })
  const refreshFrom = async (cookie: string, headers: Record<string, string> = { 'x-wechat-auth-csrf': '1' }) =>
    await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `wxauth-refresh=${cookie}`, ...headers } })

  const alice = await start('alice', 'snsapi_userinfo')
  const ok = await post({ code: alice.code, state: alice.state }, alice.cookie)
  t.equal(ok.statusCode, 200)
  keep('access token signature', String(ok.json().accessToken).split('.')[2])
  const rt = keep('refresh cookie', ok.cookies.find((c) => c.name === 'wxauth-refresh')?.value)
  await post({ code: alice.code, state: alice.state }, alice.cookie) // reused
  const other = await start('bob')
  await post({ code: other.code, state: other.state }, alice.cookie) // another browser
  await post({ code: other.code, state: `${other.state}x` }, other.cookie) // forged
  for (const user of ['invalid', 'garbage', 'limit']) {
    const s = await start(user)
    await post({ code: s.code, state: s.state }, s.cookie)
  }
  await refreshFrom(rt, {}) // CSRF refused
  const rotated = await refreshFrom(rt)
  t.equal(rotated.statusCode, 200)
  const rt2 = keep('refresh cookie', rotated.cookies.find((c) => c.name === 'wxauth-refresh')?.value)
  keep('access token signature', String(rotated.json().accessToken).split('.')[2])
  await refreshFrom(rt2)
  await refreshFrom(rt) // reuse: the session ends
  const late = await start('carol')
  await redis.stop()
  await post({ code: late.code, state: late.state }, late.cookie)
  await refreshFrom(rt2)

  const text = logs.join('\n')
  const audit = JSON.stringify(events)
  t.ok(logs.length > 30, `captured ${logs.length} lines`)
  t.match(text, /WeChat answered with an error/, 'WeChat\'s errors were logged')
  t.match(text, /AUTH_H5_STATE_OTHER_BROWSER/, 'the refusals were logged')
  t.match(text, /STORE_UNAVAILABLE/, 'the outage was logged')
  t.ok(events.some((e) => e.event === 'session.open' && e.deviceType === 'h5' && e.via === 'h5'), 'the H5 session\'s audit event')
  t.ok(events.some((e) => e.event === 'login' && e.reason === 'h5' && e.outcome === 'WX_OAUTH_CODE_INVALID'), 'a refused H5 login\'s audit event')
  t.ok(secrets.length > 15, `${secrets.length} secrets checked`)
  for (const [what, value] of secrets) {
    t.notOk(text.includes(value), `no ${what} in the logs`)
    t.notOk(audit.includes(value), `no ${what} in an audit event`)
  }
})

test('credentials a client put in a URL\'s query are not logged; the other parameters are', async (t) => {
  const sim = await startSim(t)
  const logs: string[] = []
  const app = await buildApp(t, { sim, logs })
  const pair = await login(app, 'quinn.1')
  const signature = pair.accessToken.split('.')[2] as string
  const urls = [
    `/auth/me?access_token=${pair.accessToken}`,
    '/auth/h5/authorize?code=SECRETCODE123&state=SECRETSTATE456',
    `/auth/verify?role=admin&%74oken=${pair.accessToken}`,
    `/auth/sessions?refreshToken=${pair.refreshToken}&x=1`
  ]
  for (const url of urls) await app.inject({ method: 'GET', url })
  const text = logs.join('\n')
  for (const [what, value] of [['an access token', signature], ['a refresh token', pair.refreshToken], ['a code', 'SECRETCODE123'], ['a state', 'SECRETSTATE456']]) {
    t.notOk(text.includes(value as string), `no ${what as string} of a query in the logs`)
  }
  t.match(text, /"url":"\/auth\/verify\?role=admin&%74oken=\[redacted\]"/, 'the other parameters stay, a name percent-encoded is read as decoded')
  t.match(text, /"url":"\/auth\/me\?access_token=\[redacted\]"/)
})

test('credentials under any query name, in returnTo\'s query or in the path are not logged nor echoed by a 404; ids are', async (t) => {
  const { sim, logs, page, app } = await h5Gateway(t, {}, {})
  const events: AuditEvent[] = []
  app.wechatAuthEvents.on('audit', (e) => events.push(e))
  const pair = await login(app, 'rupert.1')
  // The H5 page asks again from its own address, which WeChat gave a code and a state: refused (WeChat
  // appends its own), and logged without them.
  const start = await app.inject({ method: 'GET', url: '/auth/h5/authorize' })
  const wechat = await request(`${String(start.headers.location).replace('#wechat_redirect', '')}&user=rupert`)
  await wechat.body.dump()
  const back = new URL(String(wechat.headers.location))
  const [code, state] = [back.searchParams.get('code') as string, back.searchParams.get('state') as string]
  const again = await app.inject({ method: 'GET', url: `/auth/h5/authorize?scope=snsapi_base&returnTo=${encodeURIComponent(back.href)}` })
  t.same([again.statusCode, again.json().code], [400, 'AUTH_H5_RETURN_TO_REFUSED'])
  const { id, secret } = (await app.inject({ method: 'POST', url: '/auth/qr' })).json<{ id: string, secret: string }>()
  const lost = await app.inject({ method: 'GET', url: `/auth/${pair.refreshToken}` })
  t.same([lost.statusCode, lost.json().code, lost.json().message], [404, 'ROUTE_NOT_FOUND', 'No route GET /auth/[redacted]'], 'the 404 does not echo the token')
  t.equal((await app.inject({ method: 'POST', url: `/auth/qr/${secret}/token`, payload: { secret } })).json().code, 'FST_ERR_VALIDATION')
  t.equal((await app.inject({ method: 'GET', url: `/auth/qr/${id}`, headers: bearer(pair.accessToken) })).statusCode, 200)
  await app.inject({ method: 'GET', url: `/auth/me?refresh=${pair.refreshToken}`, headers: bearer(pair.accessToken) })
  await app.inject({ method: 'POST', url: `/auth/refresh?x=${pair.accessToken}`, payload: { refreshToken: pair.refreshToken } })
  // The admin listener, as server.ts builds it: the gateway's options and logger, a token a client put in the query.
  const adminLogs: string[] = []
  const gatewayLog = Fastify(serverOptions({ LOG_LEVEL: 'info', TRUST_PROXY: 'false' }, { logStream: { write: (l) => { adminLogs.push(l) } } }))
  t.teardown(async () => await gatewayLog.close())
  const adminWith = async (token: string): Promise<FastifyInstance> => {
    const admin = Fastify(adminServerOptions({ LOG_LEVEL: 'info', TRUST_PROXY: 'false' }, gatewayLog.log, token))
    t.teardown(async () => await admin.close())
    admin.setNotFoundHandler(notFoundHandler)
    await admin.register(adminRoutes, { sessions: app.wechatAuthSessions, token })
    return admin
  }
  const adminToken = 'admin-token-0123456789-abcdefghijklmnopqrstuvwxyz'
  const admin = await adminWith(adminToken)
  const user = `/admin/apps/${sim.appid}/openids/${pair.openid}`
  t.equal((await admin.inject({ method: 'GET', url: `${user}?t=${adminToken}` })).json().code, 'ADMIN_TOKEN_INVALID', 'a token in the query is no token')
  t.equal((await admin.inject({ method: 'DELETE', url: `${user}/ban?service=pay`, headers: bearer(adminToken) })).statusCode, 204)
  // An ADMIN_TOKEN of 32 characters, not all of base64url's: not token-shaped, yet never logged from a path.
  const oddToken = 'k3y!wz#Q9-p$0x~7mE*r2@vL5^nB8&tY'
  const odd = await adminWith(oddToken)
  const asUser = await odd.inject({ method: 'GET', url: `/admin/apps/${sim.appid}/users/${encodeURIComponent(oddToken)}`, headers: bearer(oddToken) })
  t.same([asUser.statusCode, asUser.json().code], [400, 'FST_ERR_VALIDATION'], 'the admin token as a user id names no user')
  t.equal((await odd.inject({ method: 'GET', url: `/admin/${encodeURIComponent(encodeURIComponent(oddToken))}` })).statusCode, 401, 'twice encoded, elsewhere in the path')
  // A malformed escape elsewhere in the URL does not hide it.
  await odd.inject({ method: 'GET', url: `/admin/apps/${sim.appid}/users/${encodeURIComponent(oddToken)}/%zz`, headers: bearer(oddToken) })
  // One of 32 hex digits (openssl rand -hex 16) passes an openid's pattern, and a reason's.
  const hexToken = '5f2c9a0e7b1d4c3a8e6f0b2d9c7a1e4f'
  const hex = await adminWith(hexToken)
  for (const [method, url, payload, field] of [
    ['POST', `/admin/apps/${sim.appid}/openids/${hexToken}/kick`, {}, 'params/openid'],
    ['PUT', `${user}/ban`, { reason: hexToken }, 'body/reason'],
    ['PUT', `${user}/access`, { roles: ['vip', hexToken] }, 'body/roles/1']
  ] as const) {
    const refused = await hex.inject({ method, url, payload, headers: bearer(hexToken) })
    t.same([refused.statusCode, refused.json().code, refused.json().message], [400, 'FST_ERR_VALIDATION', `${field} holds the admin token`], `${method} ${field}: refused, nothing done`)
  }
  t.notOk(events.some((e) => JSON.stringify(e).includes(hexToken)), 'in no audit event')

  const text = logs.join('\n') + adminLogs.join('\n')
  for (const [what, value] of [['H5 code', code], ['H5 state', state], ['refresh token', pair.refreshToken], ['access token signature', pair.accessToken.split('.')[2] as string],
    ['QR secret', secret], ['admin token', adminToken], ['admin token of 32 characters', oddToken], ['the same, encoded', encodeURIComponent(oddToken)],
    ['the same, twice encoded', encodeURIComponent(encodeURIComponent(oddToken))], ['admin token of 32 hex digits', hexToken]]) {
    t.notOk(text.includes(value as string), `no ${what as string} in the logs`)
  }
  t.ok(text.includes(`"url":"/auth/h5/authorize?scope=snsapi_base&returnTo=${encodeURIComponent(page)}%3F[redacted]"`), 'returnTo\'s origin and path')
  t.ok(text.includes('"url":"/auth/[redacted]"') && text.includes('"url":"/auth/qr/[redacted]/token"'), 'the token in the path redacted')
  t.ok(text.includes(`"url":"/auth/qr/${id}"`) && text.includes('"url":"[redacted]"') && text.includes(`"url":"${user}/ban?service=pay"`), 'ids and the parameters the routes take stay')
})
