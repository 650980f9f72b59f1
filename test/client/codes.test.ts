// fastify-wechat-auth/client's reaction to each code, against a real gateway: step-up then the request
// again, 429 and a 503's retry-after waited out, 503/504 retried a few times with jitter for methods safe
// to repeat, a stale session_key answered by a new login and a request to fetch the data again, the
// phone, me and logout helpers, error bodies and headers, and the codes the client's types know.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { test } from 'tap'
import ts from 'typescript'
import { WechatAuthError, createWechatAuthClient, type LoggedOut } from '../../client/index.js'
import { bearer } from '../helper.js'
import { fakeTime, gateway, standIn } from './stand-in.js'

test('a route behind authorize({ stepUp: true }): a fresh wx.login() code to /auth/step-up, then the request again', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('alice')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const ended: LoggedOut[] = []
  client.on('loggedOut', (e) => ended.push(e))
  const answers = await Promise.all([1, 2, 3].map(async () => await client.request<{ refunded: boolean }>({ url: '/api/refund', method: 'POST', data: {} })))
  t.same(answers.map((a) => a.data), [{ refunded: true }, { refunded: true }, { refunded: true }])
  t.equal(mp.calls['POST /auth/step-up'], 1, 'one step-up for the three')
  t.equal(mp.logins, 2, 'one wx.login() to log in, one for the step-up')
  t.equal(mp.calls['POST /auth/login'], 1, 'the session was kept: no new login')
  t.equal(mp.calls['POST /api/refund'], 6, 'each refused once, then let through')
  t.same(ended, [])
  const again = await client.stepUp()
  t.equal(again.expiresIn, 300, 'stepUp() by hand answers StepUpResponse')
})

test('a step-up with another user\'s code: 403 AUTH_STEP_UP_MISMATCH, the request not repeated', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('bob')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  await client.ensureLogin()
  mp.user = 'mallory'
  const err = await client.request({ url: '/api/refund', method: 'POST', data: {} }).catch((e: WechatAuthError) => e)
  t.match(err, { code: 'AUTH_STEP_UP_MISMATCH', statusCode: 403 })
  t.equal(mp.calls['POST /api/refund'], 1)
  t.ok(client.session(), 'the session is kept')
})

test('429 RATE_LIMITED: retry-after waited out once, then the code and retryAfter for the app', async (t) => {
  const { baseUrl } = await gateway(t, { config: { RATE_LIMIT_LOGIN_MAX: 1 } })
  const mp = standIn('carol')
  const time = fakeTime()
  const first = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep, maxRetryAfter: 120 })
  await first.ensureLogin()
  mp.storage.clear()
  const second = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep, maxRetryAfter: 120 })
  const err = await second.ensureLogin().then(() => null, (e: WechatAuthError) => e)
  t.match(err, { code: 'RATE_LIMITED', statusCode: 429 })
  t.ok(err?.retryAfter !== undefined && err.retryAfter > 0 && err.retryAfter <= 60, 'retryAfter from the header')
  t.equal(time.clock.slept.length, 1, 'waited once')
  t.ok((time.clock.slept[0] as number) >= 1000, 'for retry-after seconds')
  t.equal(mp.calls['POST /auth/login'], 3, 'the first login, the refused one, its one retry')

  const impatient = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep, maxRetryAfter: 0 })
  t.match(await impatient.ensureLogin().catch((e: WechatAuthError) => e), { code: 'RATE_LIMITED' })
  t.equal(time.clock.slept.length, 1, 'a retry-after over maxRetryAfter is not waited')
})

test('503 and 504: retried with growing jittered waits, a bounded number of times', async (t) => {
  let flaky = 0
  const { baseUrl } = await gateway(t, {
    routes: (app) => {
      app.get('/api/flaky', async (_request, reply) => ++flaky <= 2 ? await reply.code(503).send({ statusCode: 503, code: 'STORE_UNAVAILABLE', error: 'Service Unavailable', message: 'down' }) : { ok: true })
      app.get('/api/down', async (_request, reply) => await reply.code(504).send({ statusCode: 504, code: 'WX_TIMEOUT', error: 'Gateway Timeout', message: 'slow' }))
    }
  })
  const mp = standIn('dave')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep, random: () => 0.5 })
  t.same((await client.request({ url: '/api/flaky' })).data, { ok: true }, 'the third try answers')
  t.same(time.clock.slept, [250, 500], 'waits of 250 ms × 2^n, jittered by ±50%')
  const err = await client.request({ url: '/api/down' }).catch((e: WechatAuthError) => e)
  t.match(err, { code: 'WX_TIMEOUT', statusCode: 504 })
  t.equal(mp.calls['GET /api/down'], 3, 'tried three times, not more')

  const jittered = fakeTime()
  const other = createWechatAuthClient({ platform: standIn('erin').wx, baseUrl, sleep: jittered.sleep, random: () => 0.9, retries: 1 })
  await other.request({ url: '/api/down' }).catch(() => {})
  t.same(jittered.clock.slept, [350], 'retries, and the jitter from random()')
})

test('decrypt: a stale session_key logs in again and tells the app to fetch the data again; then it decrypts', async (t) => {
  const { app, sim, baseUrl } = await gateway(t)
  const mp = standIn('frank')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const first = await client.ensureLogin()
  // What wx.getUserInfo hands the app, passed as it is: only encryptedData and iv are sent.
  t.match(await client.decrypt(sim.encryptFor('frank', { nickName: 'F' })), { nickName: 'F', watermark: { appid: sim.appid } })
  await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'frank.other' } })
  const stale = sim.encryptFor('frank', { nickName: 'F' })
  const reasons: string[] = []
  client.on('loggedOut', (e) => reasons.push(e.reason))
  const err = await client.decrypt(stale).catch((e: WechatAuthError) => e)
  t.match(err, { code: 'WX_SESSION_KEY_STALE', refetch: true })
  t.same(reasons, ['WX_SESSION_KEY_STALE'])
  t.equal(mp.logins, 2, 'logged in again')
  t.equal(mp.calls['POST /auth/logout'], 1, 'the stale session logged out at the gateway')
  const old = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: first.refreshToken } })
  t.equal(old.statusCode, 401, `not left among the user's devices (${String(old.json().code)})`)
  const data = await client.decrypt<{ nickName: string, watermark: { appid: string } }>(sim.encryptFor('frank', { nickName: 'F' }))
  t.equal(data.nickName, 'F', 'the data fetched again decrypts')
  t.equal(data.watermark.appid, sim.appid)
  t.match(await client.decrypt({ encryptedData: 'AAAA', iv: 'AAAA' }).catch((e: WechatAuthError) => e), { code: 'WX_DECRYPT_FAILED' }, 'other codes as they are')
})

test('phone, me, logout and requests without a token', async (t) => {
  const { app, sim, baseUrl } = await gateway(t)
  const mp = standIn('grace')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  t.same(await client.phone('grace.p1'), { phoneNumber: sim.phoneOf('grace').phoneNumber, purePhoneNumber: sim.phoneOf('grace').purePhoneNumber, countryCode: sim.phoneOf('grace').countryCode })
  t.match(await client.phone('grace.p1').catch((e: WechatAuthError) => e), { code: 'WX_PHONE_CODE_INVALID', statusCode: 400 }, 'a used phone code')
  t.match(await client.me(), { openid: sim.openidOf('grace'), roles: [], steppedUpAt: null })
  t.match(await client.request({ url: '/health', auth: false }), { statusCode: 200, data: { status: 'ok' } })
  t.match(await client.request({ url: '/auth/nowhere', auth: false }).catch((e: WechatAuthError) => e), { code: 'ROUTE_NOT_FOUND', statusCode: 404 })
  t.match(await client.request({ url: '/nowhere', auth: false }).catch((e: WechatAuthError) => e), { code: 'HTTP_404', statusCode: 404 }, 'an answer without a code')

  const token = client.session()?.accessToken as string
  const ended: LoggedOut[] = []
  client.on('loggedOut', (e) => ended.push(e))
  await client.logout()
  t.same(ended, [{ reason: 'logout' }])
  t.equal(client.session(), null)
  t.equal(mp.storage.has('wechat-auth'), false, 'forgotten in storage')
  t.equal((await app.inject({ url: '/auth/me', headers: bearer(token) })).json().code, 'AUTH_TOKEN_REVOKED', 'ended at the gateway')
  await client.logout()
  t.equal(mp.calls['POST /auth/logout'], 1, 'logged out: nothing to end')
})

test('503 and 504 are retried only for methods safe to repeat: a POST that a proxy timed out is not sent again', async (t) => {
  const done: string[] = []
  const { baseUrl } = await gateway(t, {
    routes: (app) => {
      // The work is done, then the proxy in front answers 504 (nginx's upstream timeout).
      for (const method of ['POST', 'PATCH', 'PUT', 'DELETE'] as const) {
        app.route({ method, url: '/api/pay', onRequest: app.authenticate, handler: async (_request, reply) => { done.push(method); return await reply.code(504).send('<html>504 Gateway Time-out</html>') } })
      }
    }
  })
  const mp = standIn('heidi')
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, now: time.now, sleep: time.sleep })
  for (const method of ['POST', 'PATCH', 'PUT', 'DELETE'] as const) {
    t.match(await client.request({ url: '/api/pay', method, data: method === 'DELETE' ? undefined : {} }).catch((e: WechatAuthError) => e), { code: 'HTTP_504', statusCode: 504 }, method)
  }
  t.same(done, ['POST', 'PATCH', 'PUT', 'PUT', 'PUT', 'DELETE', 'DELETE', 'DELETE'], 'POST and PATCH once; PUT and DELETE, idempotent, retried')
})

test('503 with retry-after: waited out once (with jitter) when at most maxRetryAfter, else the error at once', async (t) => {
  const hits: Record<string, number> = {}
  const busy = (url: string, after: string, times: number) => (app: FastifyInstance) => app.get(url, async (_request, reply) => {
    hits[url] = (hits[url] ?? 0) + 1
    if (hits[url] > times) return { ok: true }
    return await reply.code(503).header('retry-after', after).send({ statusCode: 503, code: 'SERVER_OVERLOADED', error: 'Service Unavailable', message: 'busy' })
  })
  const { baseUrl } = await gateway(t, {
    routes: (app) => {
      busy('/api/busy-once', '5', 1)(app)
      busy('/api/busy', '5', 99)(app)
      busy('/api/busy-long', '60', 99)(app)
    }
  })
  const time = fakeTime()
  const client = createWechatAuthClient({ platform: standIn('ivan').wx, baseUrl, now: time.now, sleep: time.sleep, random: () => 0.5 })
  t.same((await client.request({ url: '/api/busy-once' })).data, { ok: true })
  t.same(time.clock.slept, [5500], 'retry-after: 5, plus up to a second of jitter')
  t.match(await client.request({ url: '/api/busy' }).catch((e: WechatAuthError) => e), { code: 'SERVER_OVERLOADED', retryAfter: 5 })
  t.equal(hits['/api/busy'], 2, 'waited out once, not again')
  t.same(time.clock.slept, [5500, 5500])
  t.match(await client.request({ url: '/api/busy-long' }).catch((e: WechatAuthError) => e), { code: 'SERVER_OVERLOADED', retryAfter: 60 })
  t.equal(hits['/api/busy-long'], 1, 'retry-after over maxRetryAfter (10): the error at once')
  t.same(time.clock.slept, [5500, 5500])
})

test('an error body with detail: null is a WechatAuthError with its code', async (t) => {
  const { baseUrl } = await gateway(t, {
    routes: (app) => app.get('/api/odd', async (_request, reply) => await reply.code(400).send({ code: 'ODD', message: 'odd', detail: null }))
  })
  const err = await createWechatAuthClient({ platform: standIn('judy').wx, baseUrl }).request({ url: '/api/odd', auth: false }).catch((e: unknown) => e)
  t.ok(err instanceof WechatAuthError)
  t.match(err, { code: 'ODD', statusCode: 400, detail: undefined, until: undefined })
})

test('request() sends the app\'s own Content-Type alone, whatever its case', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('kim')
  const sent: Array<Record<string, string>> = []
  const request = mp.wx.request
  mp.wx.request = (opts) => { sent.push(opts.header); return request(opts) }
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  await client.request({ url: '/health', method: 'POST', data: 'a=1', header: { 'Content-Type': 'application/x-www-form-urlencoded' }, auth: false }).catch(() => {})
  t.same(sent[0], { 'Content-Type': 'application/x-www-form-urlencoded' })
  await client.request({ url: '/health', method: 'POST', data: {}, auth: false }).catch(() => {})
  t.same(sent[1], { 'content-type': 'application/json' }, 'JSON when the app names none')
})

test('ServerErrorCode has every code docs/http-api.md says the gateway answers', async (t) => {
  const source = fileURLToPath(new URL('../../client/types.ts', import.meta.url))
  const program = ts.createProgram([source], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, skipLibCheck: true, noEmit: true })
  const alias = program.getSourceFile(source)?.statements.find((s) => ts.isTypeAliasDeclaration(s) && s.name.text === 'ServerErrorCode')
  const type = program.getTypeChecker().getTypeAtLocation((alias as ts.TypeAliasDeclaration).name)
  const codes = new Set((type.isUnion() ? type.types : [type]).map((c) => c.isStringLiteral() ? c.value : ''))
  const doc = await readFile(fileURLToPath(new URL('../../docs/http-api.md', import.meta.url)), 'utf8')
  const errors = doc.slice(doc.indexOf('## Errors'), doc.indexOf('### Errors at boot'))
  const documented = new Set([...errors.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm), ...errors.matchAll(/`(FST_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1] as string))
  t.ok(documented.has('FST_ERR_CTP_EMPTY_JSON_BODY') && documented.has('AUTH_TOKEN_EXPIRED'), `${documented.size} codes documented`)
  t.same([...documented].filter((c) => !codes.has(c)), [], 'none missing from the client\'s types')
})
