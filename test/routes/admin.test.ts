// The admin API (routes/admin.ts) on an admin instance of its own, as the standalone server runs it,
// acting on a gateway with a real Redis: users log in through /auth/login, an operator drives the
// admin API over HTTP, and the effects are seen through the gateway. No answer ever holds a secret.
import SwaggerParser from '@apidevtools/swagger-parser'
import swagger from '@fastify/swagger'
import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify'
import { setTimeout } from 'node:timers/promises'
import { test, type Test as Tap } from 'tap'
import wechatAuth from '../../app.js'
import adminRoutes from '../../routes/admin.js'
import { notFoundHandler } from '../../http/error-handler.js'
import { serverOptions } from '../../http/server-options.js'
import { userTag } from '../../lib/ids.js'
import type { ResolveUser } from '../../lib/sessions.js'
import type { Simulator } from '../../simulator/index.js'
import { bearer, buildApp, me, refresh, startRedis, startSim, type Pair } from '../helper.js'

const TOKEN = 'admin-token-0123456789-abcdefghijklmnopqrstuvwxyz'
const admin = bearer(TOKEN)

interface Setup {
  app: FastifyInstance
  /** An admin API request with the token (or the headers given); its answer is kept for noSecrets. */
  call: (opts: InjectOptions) => Promise<LightMyRequestResponse>
  /** Logs a user in through the gateway, keeping the tokens and the session_key WeChat issued. */
  loginAs: (code: string, payload?: Record<string, unknown>) => Promise<Pair>
  /** Asserts that no admin answer of the test held a token or a session_key. */
  noSecrets: () => void
  appid: string
}

async function setup (t: Tap, opts: { resolveUser?: ResolveUser } = {}): Promise<Setup> {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, resolveUser: opts.resolveUser })
  // As server.ts builds it: an instance of its own, acting on the gateway's host API.
  const adminApp = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUST_PROXY: 'false' }))
  t.teardown(async () => await adminApp.close())
  adminApp.setNotFoundHandler(notFoundHandler)
  await adminApp.register(adminRoutes, { sessions: app.wechatAuthSessions, token: TOKEN })
  const answers: string[] = []
  const secrets: string[] = []
  const call = async (o: InjectOptions): Promise<LightMyRequestResponse> => {
    const res = await adminApp.inject({ ...o, headers: o.headers ?? admin })
    answers.push(res.body, JSON.stringify(res.headers))
    return res
  }
  const loginAs = async (code: string, payload: Record<string, unknown> = {}): Promise<Pair> => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'user-agent': 'MicroMessenger/8.0.43' }, payload: { code, ...payload } })
    t.equal(res.statusCode, 200, `login ${code}`)
    const pair = res.json<Pair>()
    secrets.push(pair.accessToken, pair.refreshToken, sim.sessionKeyOf(code.split('.')[0] as string) as string)
    return pair
  }
  const noSecrets = (): void => {
    t.ok(secrets.length > 0 && answers.length > 0)
    const leaked = secrets.filter((secret) => answers.some((body) => body.includes(secret)))
    t.same(leaked, [], `none of ${answers.length / 2} admin answers holds a token or a session_key`)
  }
  return { app, call, loginAs, noSecrets, appid: sim.appid }
}

const refused = (t: Tap, res: LightMyRequestResponse, status: number, code: string, what: string): void => {
  t.equal(res.statusCode, status, what)
  t.equal(res.json().code, code, what)
}

test('a missing or wrong token is refused with 401 ADMIN_TOKEN_INVALID and WWW-Authenticate; only the header counts', async (t) => {
  const { call, loginAs, appid, noSecrets } = await setup(t)
  const alice = await loginAs('alice.1')
  const url = `/admin/apps/${appid}/users/${alice.openid}`
  const cases: Array<[string, InjectOptions]> = [
    ['no Authorization header', { method: 'GET', url, headers: {} }],
    ['a wrong token of the same length', { method: 'GET', url, headers: bearer(TOKEN.replace(/.$/, 'Z')) }],
    ['a shorter token', { method: 'GET', url, headers: bearer(TOKEN.slice(0, 32)) }],
    ['a longer token', { method: 'GET', url, headers: bearer(`${TOKEN}x`) }],
    ['another scheme', { method: 'GET', url, headers: { authorization: `Basic ${TOKEN}` } }],
    ['the bare token', { method: 'GET', url, headers: { authorization: TOKEN } }],
    ['a user\'s access token', { method: 'GET', url, headers: bearer(alice.accessToken) }],
    ['the token in the query string', { method: 'GET', url: `${url}?token=${TOKEN}&access_token=${TOKEN}`, headers: {} }],
    ['a write without a token', { method: 'PUT', url: `${url}/ban`, headers: {}, payload: { reason: 'spam' } }],
    ['the document without a token', { method: 'GET', url: '/admin/openapi.json', headers: {} }]
  ]
  for (const [what, options] of cases) {
    const res = await call(options)
    refused(t, res, 401, 'ADMIN_TOKEN_INVALID', what)
    t.equal(res.headers['www-authenticate'], 'Bearer realm="wechat-auth-admin"', `${what}: says how to authenticate`)
    t.equal(res.headers['cache-control'], 'no-store', `${what}: kept by no cache`)
  }
  t.equal((await call({ method: 'GET', url })).headers['cache-control'], 'no-store', 'a user\'s IPs and devices are kept by no cache')
  t.equal((await call({ method: 'GET', url, headers: { authorization: `bearer ${TOKEN}` } })).statusCode, 200, 'the scheme is case-insensitive')
  refused(t, await call({ method: 'GET', url: '/admin/nowhere' }), 404, 'ROUTE_NOT_FOUND', 'an unknown admin route, with the token')
  refused(t, await call({ method: 'GET', url: '/admin/nowhere', headers: {} }), 401, 'ADMIN_TOKEN_INVALID', 'an unknown admin route, without the token')
  refused(t, await call({ method: 'GET', url: '/auth/me' }), 404, 'ROUTE_NOT_FOUND', 'the admin listener has no gateway routes')
  noSecrets()
})

test('GET names a user by id or by openid: roles, bans and live sessions with device, IP, user agent and ISO times', async (t) => {
  const { call, loginAs, appid, noSecrets } = await setup(t)
  const phone = await loginAs('bob.1', { deviceName: 'iPhone 15' })
  await loginAs('bob.2', { deviceType: 'web' })
  const bySub = await call({ method: 'GET', url: `/admin/apps/${appid}/users/${phone.openid}` })
  t.equal(bySub.statusCode, 200)
  const state = bySub.json()
  t.match(state, { appid, sub: phone.openid, roles: [], permissions: [], ban: null, serviceBans: [] })
  t.equal(state.sessions.length, 2)
  t.match(state.sessions.find((s: { deviceType: string }) => s.deviceType === 'mp'), {
    sessionId: /^[A-Za-z0-9_-]{12}$/, deviceName: 'iPhone 15', ip: '127.0.0.1', userAgent: /^MicroMessenger/, createdAt: /^\d{4}-\d\d-\d\dT.*Z$/, lastRefreshAt: null, expiresAt: /Z$/
  })
  t.notOk('current' in (state.sessions[0] as object), 'no "current": the operator holds no session')
  const byOpenid = await call({ method: 'GET', url: `/admin/apps/${appid}/openids/${phone.openid}` })
  t.same(byOpenid.json(), state, 'the same user by openid (the default resolveUser: sub = openid)')
  const nobody = await call({ method: 'GET', url: `/admin/apps/${appid}/users/nobody` })
  t.match(nobody.json(), { sub: 'nobody', sessions: [], ban: null }, 'an unknown user id has no sessions')
  refused(t, await call({ method: 'GET', url: `/admin/apps/wx00000000000000ff/users/${phone.openid}` }), 400, 'WX_APP_UNKNOWN', 'an appid not served')
  noSecrets()
})

test('kick ends one session or all, with a reason the tokens are told (AUTH_SESSION_KICKED)', async (t) => {
  const { app, call, loginAs, appid, noSecrets } = await setup(t)
  const one = await loginAs('carol.1')
  const two = await loginAs('carol.2')
  const three = await loginAs('carol.3')
  const sid = (await me(app, one.accessToken)).json().sessionId
  const url = `/admin/apps/${appid}/users/${one.openid}/kick`
  const single = await call({ method: 'POST', url, payload: { sessionId: sid, reason: 'lost-phone' } })
  t.equal(single.statusCode, 200)
  t.same(single.json(), { ended: 1 })
  const kicked = await me(app, one.accessToken)
  t.equal(kicked.statusCode, 401)
  t.match(kicked.json(), { code: 'AUTH_SESSION_KICKED', detail: { reason: 'lost-phone', endedAt: /Z$/ } })
  t.equal((await me(app, two.accessToken)).statusCode, 200, 'the other sessions live on')
  // No body at all (curl -X POST), by openid: every session, with the default reason.
  const all = await call({ method: 'POST', url: `/admin/apps/${appid}/openids/${one.openid}/kick` })
  t.same(all.json(), { ended: 2 })
  for (const pair of [two, three]) {
    t.match((await me(app, pair.accessToken)).json(), { code: 'AUTH_SESSION_KICKED', detail: { reason: 'kicked' } })
    t.match((await refresh(app, pair.refreshToken)).json(), { code: 'AUTH_SESSION_KICKED' })
  }
  t.same((await call({ method: 'POST', url, payload: {} })).json(), { ended: 0 }, 'nothing left to end')
  noSecrets()
})

test('ban refuses login, refresh and requests with 403 AUTH_ACCOUNT_BANNED; unban restores login', async (t) => {
  const { app, call, loginAs, appid, noSecrets } = await setup(t)
  const pair = await loginAs('dave.1')
  const url = `/admin/apps/${appid}/users/${pair.openid}/ban`
  const until = new Date(Date.now() + 3_600_000).toISOString()
  t.equal((await call({ method: 'PUT', url, payload: { reason: 'spam', until } })).statusCode, 204)
  const banned = { code: 'AUTH_ACCOUNT_BANNED', detail: { reason: 'spam', until } }
  t.match((await me(app, pair.accessToken)).json(), banned, 'requests')
  t.match((await refresh(app, pair.refreshToken)).json(), { code: 'AUTH_ACCOUNT_BANNED' }, 'refresh')
  const again = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'dave.2' } })
  t.equal(again.statusCode, 403)
  t.match(again.json(), banned, 'login')
  t.match((await call({ method: 'GET', url: `/admin/apps/${appid}/users/${pair.openid}` })).json(), { ban: { reason: 'spam', until }, sessions: [] })
  t.equal((await call({ method: 'PUT', url, payload: { reason: 'fraud' } })).statusCode, 204, 'made permanent')
  t.match((await call({ method: 'GET', url: `/admin/apps/${appid}/openids/${pair.openid}` })).json(), { ban: { reason: 'fraud', until: null } })
  t.equal((await call({ method: 'DELETE', url: `/admin/apps/${appid}/openids/${pair.openid}/ban` })).statusCode, 204)
  await loginAs('dave.3')
  t.match((await call({ method: 'GET', url: `/admin/apps/${appid}/users/${pair.openid}` })).json(), { ban: null, sessions: [{ deviceType: 'mp' }] })
  noSecrets()
})

test('a service ban shows in GET and ends no session; DELETE ?service= lifts it', async (t) => {
  const { app, call, loginAs, appid, noSecrets } = await setup(t)
  const pair = await loginAs('erin.1')
  const user = `/admin/apps/${appid}/users/${pair.openid}`
  t.equal((await call({ method: 'PUT', url: `${user}/ban`, payload: { reason: 'chargeback', service: 'payments' } })).statusCode, 204)
  t.equal((await me(app, pair.accessToken)).statusCode, 200, 'the session lives on')
  const state = (await call({ method: 'GET', url: user })).json()
  t.same(state.serviceBans, [{ service: 'payments', until: null, reason: 'chargeback' }])
  t.equal(state.ban, null)
  t.equal(state.sessions.length, 1)
  t.equal((await call({ method: 'DELETE', url: `${user}/ban?service=payments` })).statusCode, 204)
  t.same((await call({ method: 'GET', url: user })).json().serviceBans, [])
  noSecrets()
})

test('PUT access replaces roles and permissions: the user\'s next GET /auth/me shows them', async (t) => {
  const { app, call, loginAs, appid, noSecrets } = await setup(t)
  const pair = await loginAs('fay.1')
  const url = `/admin/apps/${appid}/openids/${pair.openid}/access`
  t.equal((await call({ method: 'PUT', url, payload: { roles: ['admin'], permissions: ['order:*'] } })).statusCode, 204)
  t.match((await me(app, pair.accessToken)).json(), { roles: ['admin'], permissions: ['order:*'] })
  t.match((await call({ method: 'GET', url: `/admin/apps/${appid}/users/${pair.openid}` })).json(), { roles: ['admin'], permissions: ['order:*'] })
  t.equal((await call({ method: 'PUT', url, payload: { roles: [], permissions: [] } })).statusCode, 204)
  t.match((await me(app, pair.accessToken)).json(), { roles: [], permissions: [] })
  noSecrets()
})

test('bad bodies, params and queries get 400 FST_ERR_VALIDATION; JSON only, bounded', async (t) => {
  const { call, loginAs, appid } = await setup(t)
  const pair = await loginAs('gus.1')
  const user = `/admin/apps/${appid}/users/${pair.openid}`
  const bad: Array<[string, InjectOptions]> = [
    ['a ban without a reason', { method: 'PUT', url: `${user}/ban`, payload: {} }],
    ['free text as a reason', { method: 'PUT', url: `${user}/ban`, payload: { reason: 'he was rude to me' } }],
    ['an until that is no time', { method: 'PUT', url: `${user}/ban`, payload: { reason: 'spam', until: 'tomorrow' } }],
    ['an until in the past', { method: 'PUT', url: `${user}/ban`, payload: { reason: 'spam', until: '2001-01-01T00:00:00Z' } }],
    ['a bad service name', { method: 'PUT', url: `${user}/ban`, payload: { reason: 'spam', service: 'Pay Ments' } }],
    ['an unknown field', { method: 'PUT', url: `${user}/ban`, payload: { reason: 'spam', forever: true } }],
    ['a bad session id', { method: 'POST', url: `${user}/kick`, payload: { sessionId: 'x' } }],
    ['a bad role', { method: 'PUT', url: `${user}/access`, payload: { roles: ['has space'], permissions: [] } }],
    ['access without its permissions (PUT replaces both)', { method: 'PUT', url: `${user}/access`, payload: { roles: ['admin'] } }],
    ['roles as a string', { method: 'PUT', url: `${user}/access`, payload: { roles: 'admin', permissions: [] } }],
    ['a bad service to unban', { method: 'DELETE', url: `${user}/ban?service=A%20B` }],
    ['an unknown query parameter', { method: 'DELETE', url: `${user}/ban?token=x` }],
    // Unban's service goes in the query: in a body it would have lifted the whole account's ban.
    ['a body to unban', { method: 'DELETE', url: `${user}/ban`, payload: { service: 'pay' } }],
    ['a query on GET', { method: 'GET', url: `${user}?sessions=false` }],
    ['a query on kick', { method: 'POST', url: `${user}/kick?sessionId=AAAAAAAAAAAA`, payload: {} }],
    ['a query on ban', { method: 'PUT', url: `${user}/ban?service=pay`, payload: { reason: 'spam' } }],
    ['a query on access', { method: 'PUT', url: `${user}/access?merge=1`, payload: { roles: ['admin'], permissions: [] } }],
    ['a query on the document', { method: 'GET', url: '/admin/openapi.json?v=2' }],
    ['a bad openid', { method: 'GET', url: `/admin/apps/${appid}/openids/not%20an%20openid` }],
    // Login never makes such a user id (lib/login.ts): the same rule here.
    ['a user id with a NUL', { method: 'GET', url: `/admin/apps/${appid}/users/a%00b` }],
    ['a user id with a line break', { method: 'PUT', url: `/admin/apps/${appid}/users/a%0Ab/ban`, payload: { reason: 'spam' } }],
    ['a user id of 257 emoji', { method: 'GET', url: `/admin/apps/${appid}/users/${encodeURIComponent('😀'.repeat(257))}` }]
  ]
  for (const [what, options] of bad) refused(t, await call(options), 400, 'FST_ERR_VALIDATION', what)
  refused(t, await call({ method: 'PUT', url: `${user}/ban`, headers: { ...admin, 'content-type': 'text/plain' }, payload: '{"reason":"spam"}' }), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', 'text/plain')
  refused(t, await call({ method: 'PUT', url: `${user}/ban`, headers: { ...admin, 'content-type': 'application/json' }, payload: '{"reason":' }), 400, 'FST_ERR_CTP_INVALID_JSON_BODY', 'broken JSON')
  const huge = { roles: ['a'], permissions: Array.from({ length: 200 }, (_, i) => `p${i}:${'x'.repeat(60)}`) }
  refused(t, await call({ method: 'PUT', url: `${user}/access`, payload: huge }), 413, 'FST_ERR_CTP_BODY_TOO_LARGE', 'a body over 8 KiB')
  t.match((await call({ method: 'GET', url: user })).json(), { ban: null, serviceBans: [], roles: [], sessions: [{ deviceType: 'mp' }] }, 'nothing was changed')
  // No body, an empty JSON body and {} all mean "none".
  t.equal((await call({ method: 'DELETE', url: `${user}/ban`, payload: {} })).statusCode, 204, '{}')
  t.equal((await call({ method: 'DELETE', url: `${user}/ban`, headers: { ...admin, 'content-type': 'application/json' }, payload: '' })).statusCode, 204, 'an empty JSON body')
})

test('a user id of the longest kind (256 characters, not all ASCII) is reached by every admin route: the router takes long path segments', async (t) => {
  const sub = `${'u'.repeat(200)}${'é'.repeat(56)}`
  const { app, call, loginAs, appid } = await setup(t, { resolveUser: async () => ({ userId: sub }) })
  const pair = await loginAs('long.1')
  const path = `/admin/apps/${appid}/users/${encodeURIComponent(sub)}`
  t.ok(path.length > 500, `a path segment of ${encodeURIComponent(sub).length} characters`)
  t.match((await call({ method: 'GET', url: path })).json(), { sub, sessions: [{ deviceType: 'mp' }] })
  t.equal((await call({ method: 'PUT', url: `${path}/access`, payload: { roles: ['ops'], permissions: [] } })).statusCode, 204)
  t.same((await call({ method: 'POST', url: `${path}/kick`, payload: { reason: 'audit' } })).json(), { ended: 1 })
  t.match((await me(app, pair.accessToken)).json(), { code: 'AUTH_SESSION_KICKED' })
  t.equal((await call({ method: 'PUT', url: `${path}/ban`, payload: { reason: 'spam' } })).statusCode, 204)
  const tooLong = await call({ method: 'GET', url: `/admin/apps/${appid}/users/${'x'.repeat(3073)}` })
  t.equal(tooLong.statusCode, 414)
  t.match(tooLong.json(), { code: 'HTTP_URI_TOO_LONG', error: 'URI Too Long' })
  t.notMatch(tooLong.body, /xxxxxxxx/, 'the path is not echoed')
  refused(t, await call({ method: 'GET', url: `/admin/apps/${appid}/users/${'x'.repeat(257)}` }), 400, 'FST_ERR_VALIDATION', 'a user id over 256 characters')
})

test('a user id of 129 to 256 emoji (over 256 UTF-16 units) is a user nobody logged in as: 200 and nothing, never a 500', async (t) => {
  const { call, appid } = await setup(t)
  for (const n of [129, 256]) {
    const path = `/admin/apps/${appid}/users/${encodeURIComponent('😀'.repeat(n))}`
    const state = await call({ method: 'GET', url: path })
    t.equal(state.statusCode, 200, `GET, ${n} emoji`)
    t.match(state.json(), { sessions: [], ban: null })
    t.equal((await call({ method: 'PUT', url: `${path}/ban`, payload: { reason: 'spam' } })).statusCode, 204, `ban, ${n} emoji`)
    t.same((await call({ method: 'POST', url: `${path}/kick` })).json(), { ended: 0 }, `kick, ${n} emoji`)
  }
})

test('a ban whose until passes between the route\'s check and the host API\'s is 400 FST_ERR_VALIDATION, never a 500', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  const hostApi = app.wechatAuthSessions
  // The clock moves between the two checks: here by 30 ms, on a busy server by one tick.
  const late = { ...hostApi, ban: async (...args: Parameters<typeof hostApi.ban>) => { await setTimeout(30); return await hostApi.ban(...args) } }
  const adminApp = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUST_PROXY: 'false' }))
  t.teardown(async () => await adminApp.close())
  await adminApp.register(adminRoutes, { sessions: late, token: TOKEN })
  const until = new Date(Date.now() + 10).toISOString()
  const res = await adminApp.inject({ method: 'PUT', url: `/admin/apps/${sim.appid}/users/someone/ban`, headers: admin, payload: { reason: 'spam', until } })
  refused(t, res, 400, 'FST_ERR_VALIDATION', 'an until in the past by the time the ban is written')
  t.match(res.json().message, /until must be a time in the future/)
  const err = await hostApi.ban({ appid: sim.appid, sub: 'someone' }, { reason: 'spam', until: Date.now() - 1 }).catch((e: unknown) => e)
  t.ok(err instanceof TypeError, 'still a TypeError for a host that calls it')
  t.match(err, { code: 'FST_ERR_VALIDATION', statusCode: 400 })
})

test('a token where the user id goes (pasted by mistake) is 400 FST_ERR_VALIDATION: it names no user, and is never written into a log line or audit event', async (t) => {
  const { call, loginAs, appid } = await setup(t)
  const pair = await loginAs('ivan.1')
  for (const [name, token] of [['access token', pair.accessToken], ['refresh token', pair.refreshToken], ['a refresh token after a prefix', `rt.${pair.refreshToken}`]] as const) {
    const res = await call({ method: 'PUT', url: `/admin/apps/${appid}/users/${encodeURIComponent(token)}/ban`, payload: { reason: 'spam' } })
    refused(t, res, 400, 'FST_ERR_VALIDATION', name)
    t.notOk(res.body.includes(token), `${name}: not in the answer`)
  }
  t.equal((await call({ method: 'GET', url: `/admin/apps/${appid}/users/${pair.openid}` })).json().ban, null, 'nobody was banned')
})

test('a ban that would end after 9999-12-31T23:59:59.999Z is 400 FST_ERR_VALIDATION: its end could not be answered as a date-time', async (t) => {
  const { app, call, loginAs, appid } = await setup(t)
  const pair = await loginAs('ivy.1')
  const path = `/admin/apps/${appid}/users/${pair.openid}`
  // A year 9999 time whose offset carries it into year 10000, for the account and for one service.
  for (const payload of [{ reason: 'spam', until: '9999-12-31T23:59:59-00:01' }, { reason: 'fraud', service: 'pay', until: '9999-12-31T23:59:59-23:59' }]) {
    const res = await call({ method: 'PUT', url: `${path}/ban`, payload })
    refused(t, res, 400, 'FST_ERR_VALIDATION', payload.until)
    t.match(res.json().message, /at most 9999-12-31T23:59:59\.999Z/)
  }
  const state = await call({ method: 'GET', url: path })
  t.equal(state.statusCode, 200, 'the user\'s state still answers (a ban past year 9999 made it a 500)')
  t.same([state.json().ban, state.json().serviceBans], [null, []], 'nothing was banned')
  t.equal((await call({ method: 'PUT', url: `${path}/ban`, payload: { reason: 'spam', until: '9999-12-31T23:59:59Z' } })).statusCode, 204, 'the last second of 9999 is taken')
  t.match((await call({ method: 'GET', url: path })).json(), { ban: { until: '9999-12-31T23:59:59.000Z' } })
  await t.rejects(app.wechatAuthSessions.ban({ appid, sub: pair.openid }, { reason: 'spam', until: new Date(Date.UTC(10000, 0, 1)) }), { code: 'FST_ERR_VALIDATION', message: /at most 9999/ }, 'the host API refuses it too')
  // One stored before these were refused (written to the store directly here): answered at RFC 3339's last time.
  await app.wechatAuthStore.ban(userTag(appid, pair.openid), { until: Date.UTC(10000, 0, 1), reason: 'old' }, 60_000)
  const old = await call({ method: 'GET', url: path })
  t.equal(old.statusCode, 200, 'a ban stored with a later end: still no 500')
  t.match(old.json(), { ban: { until: '9999-12-31T23:59:59.999Z', reason: 'old' } })
})

test('with a resolveUser hook, an openid names the user it last logged in as; an unknown one is 404 USER_NOT_FOUND', async (t) => {
  const resolveUser: ResolveUser = async ({ openid }) => ({ userId: `customer:${openid.slice(-6)}` })
  const { app, call, loginAs, appid, noSecrets } = await setup(t, { resolveUser })
  const pair = await loginAs('hank.1')
  const sub = `customer:${pair.openid.slice(-6)}` // a colon, as in the docs' examples
  const state = await call({ method: 'GET', url: `/admin/apps/${appid}/openids/${pair.openid}` })
  t.match(state.json(), { sub, sessions: [{ deviceType: 'mp' }] })
  t.same((await call({ method: 'GET', url: `/admin/apps/${appid}/users/${sub}` })).json(), state.json())
  t.same((await call({ method: 'POST', url: `/admin/apps/${appid}/openids/${pair.openid}/kick`, payload: { reason: 'audit' } })).json(), { ended: 1 })
  t.match((await me(app, pair.accessToken)).json(), { code: 'AUTH_SESSION_KICKED', detail: { reason: 'audit' } })
  for (const [method, suffix] of [['GET', ''], ['POST', '/kick'], ['DELETE', '/ban']] as const) {
    refused(t, await call({ method, url: `/admin/apps/${appid}/openids/oUnknownOpenid123${suffix}` }), 404, 'USER_NOT_FOUND', `${method} an unknown openid`)
  }
  refused(t, await call({ method: 'PUT', url: `/admin/apps/wx00000000000000ff/openids/${pair.openid}/ban`, payload: { reason: 'spam' } }), 400, 'WX_APP_UNKNOWN', 'an appid not served')
  noSecrets()
})

test('the plugin checks its options at registration', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim })
  const register = async (opts: Record<string, unknown>): Promise<void> => {
    const instance = Fastify()
    t.teardown(async () => await instance.close())
    await instance.register(adminRoutes, opts as never).ready()
  }
  await t.rejects(register({ sessions: app.wechatAuthSessions, token: 'short-token' }), /token option must be 32 to 256 printable ASCII characters/)
  await t.rejects(register({ sessions: app.wechatAuthSessions, token: 'ab'.repeat(20) }), /token option is too weak/)
  await t.rejects(register({ sessions: app.wechatAuthSessions, token: `${TOKEN}\n` }), /token option must be 32 to 256 printable ASCII characters, no space or line break/, 'a secret file\'s newline')
  await t.rejects(register({ sessions: app.wechatAuthSessions, token: `${TOKEN} x` }), /printable ASCII/, 'a space')
  await t.rejects(register({ sessions: app.wechatAuthSessions }), /token option/)
  await t.rejects(register({ sessions: {}, token: TOKEN }), /sessions option must be the host API/)
})

test('embedded in the gateway: GET /admin/openapi.json documents every admin route; the gateway\'s document leaves them out', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, extend: (instance) => { instance.register(adminRoutes, { sessions: instance.wechatAuthSessions, token: TOKEN }) } })
  const doc = await app.inject({ method: 'GET', url: '/admin/openapi.json', headers: admin })
  t.equal(doc.statusCode, 200)
  await t.resolves(SwaggerParser.validate(structuredClone(doc.json()) as never), 'a valid OpenAPI document (@apidevtools/swagger-parser)')
  const { paths, components } = doc.json()
  t.same(Object.keys(paths).sort(), [
    '/admin/apps/{appid}/openids/{openid}', '/admin/apps/{appid}/openids/{openid}/access', '/admin/apps/{appid}/openids/{openid}/ban', '/admin/apps/{appid}/openids/{openid}/kick',
    '/admin/apps/{appid}/users/{sub}', '/admin/apps/{appid}/users/{sub}/access', '/admin/apps/{appid}/users/{sub}/ban', '/admin/apps/{appid}/users/{sub}/kick'
  ])
  const operations = Object.values(paths as Record<string, Record<string, { operationId: string, security: unknown, responses: Record<string, unknown> }>>).flatMap((p) => Object.values(p))
  t.equal(operations.length, 10)
  for (const op of operations) {
    t.same(op.security, [{ adminToken: [] }], `${op.operationId} needs the token`)
    t.match(op.responses['401'], { content: { 'application/json': { schema: { properties: { code: { enum: ['ADMIN_TOKEN_INVALID'] } } } } } }, `${op.operationId} documents ADMIN_TOKEN_INVALID`)
  }
  t.match(components.securitySchemes, { adminToken: { type: 'http', scheme: 'bearer' } })
  t.equal(paths['/admin/apps/{appid}/users/{sub}/kick'].post.requestBody.required, false, 'kick\'s body is optional')
  t.equal(paths['/admin/apps/{appid}/users/{sub}/ban'].delete.requestBody.required, false, 'unban\'s body is optional')
  t.not(paths['/admin/apps/{appid}/users/{sub}/ban'].put.requestBody.required, false, 'ban\'s body is not')
  const gateway = (await app.inject({ method: 'GET', url: '/auth/openapi.json' })).json()
  t.notOk(Object.keys(gateway.paths).some((path) => path.startsWith('/admin')), 'the gateway\'s own document lists no admin route')
  const pair = (await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'ivy.1' } })).json()
  t.equal((await app.inject({ method: 'GET', url: `/admin/apps/${sim.appid}/users/${pair.openid}`, headers: admin })).statusCode, 200, 'the routes work beside the gateway\'s')
  refused(t, await app.inject({ method: 'GET', url: '/admin/nowhere', headers: admin }), 404, 'ROUTE_NOT_FOUND', 'a coded 404 under /admin in a host')
})

/** A host as Fastify() makes it (no options of the gateway's), with the gateway and the admin API; `first` registers before them. */
async function plainHost (t: Tap, sim: Simulator, first?: (host: FastifyInstance) => Promise<void>): Promise<FastifyInstance> {
  const host = Fastify()
  t.teardown(async () => await host.close())
  await first?.(host)
  await host.register(wechatAuth, { config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, LOG_LEVEL: 'silent' } })
  await host.register(adminRoutes, { sessions: host.wechatAuthSessions, token: TOKEN })
  return host
}

test('in a host with Fastify\'s default Ajv options, a misspelt or mistyped field is still 400, never dropped into a wider action', async (t) => {
  const sim = await startSim(t)
  const host = await plainHost(t, sim) // removeAdditional and coerceTypes on, as a host has them
  const one = (await host.inject({ method: 'POST', url: '/auth/login', payload: { code: 'ivy.1' } })).json<Pair>()
  await host.inject({ method: 'POST', url: '/auth/login', payload: { code: 'ivy.2' } })
  const path = `/admin/apps/${sim.appid}/users/${one.openid}`
  const cases = [
    ['POST', `${path}/kick`, { sesionId: 'x', reason: 'typo' }, 'kick: "sesionId" (dropped, every session ended)'],
    ['PUT', `${path}/ban`, { reason: 'x', servise: 'pay' }, 'ban: "servise" (dropped, the whole account banned)'],
    ['PUT', `${path}/access`, { roles: 'admin', permissions: 'x' }, 'access: strings for arrays (coerced)'],
    ['DELETE', `${path}/ban?servise=pay`, undefined, 'unban: "servise" (dropped, the account ban lifted)']
  ] as const
  for (const [method, url, payload, what] of cases) {
    refused(t, await host.inject({ method, url, headers: admin, ...(payload === undefined ? {} : { payload }) }), 400, 'FST_ERR_VALIDATION', what)
  }
  const state = (await host.inject({ method: 'GET', url: path, headers: admin })).json()
  t.same([state.sessions.length, state.ban, state.roles], [2, null, []], 'nothing was done: two live sessions, no ban, no role')
  t.equal((await host.inject({ method: 'POST', url: `${path}/kick`, headers: admin, payload: { sessionId: state.sessions[0].sessionId } })).json().ended, 1, 'the field spelt right still works')
})

test('beside a host\'s own @fastify/swagger: the host\'s document still builds, without the admin routes; the admin document keeps them', async (t) => {
  const sim = await startSim(t)
  const host = await plainHost(t, sim, async (h) => { await h.register(swagger, { openapi: { info: { title: 'the host', version: '1' } } }) })
  await host.ready()
  const doc = host.swagger() as { paths: Record<string, unknown> }
  t.ok(Object.keys(doc.paths).includes('/auth/login'), 'the host\'s document builds (it threw on the admin routes\' security scheme), with the gateway\'s routes')
  t.notOk(Object.keys(doc.paths).some((path) => path.startsWith('/admin')), 'and no admin route: a host\'s document is often public')
  await t.resolves(SwaggerParser.validate(structuredClone(doc) as never), 'a valid document')
  const admins = (await host.inject({ method: 'GET', url: '/admin/openapi.json', headers: admin })).json()
  t.equal(Object.keys(admins.paths).length, 8, 'the admin document lists its eight paths')
})
