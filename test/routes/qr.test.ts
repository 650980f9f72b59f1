// Web QR login confirmed in the mini program, over HTTP and Server-Sent Events, on a real Redis shared
// by two gateway instances and the simulator's wxacode.getUnlimited.
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { test } from 'tap'
import { StoreUnavailableError } from '../../lib/errors.js'
import { SCENE } from '../../simulator/wxacode.js'
import { bearer, buildApp, login, me, redisClient, startRedis, startSim, type Pair } from '../helper.js'

const WEB = { 'user-agent': 'Mozilla/5.0 (Desk)', 'x-test': 'web' }
const create = async (app: FastifyInstance): Promise<{ id: string, secret: string, expiresIn: number }> =>
  (await app.inject({ method: 'POST', url: '/auth/qr', headers: WEB })).json()
const step = async (app: FastifyInstance, token: string, id: string, name: 'scan' | 'confirm' | 'cancel'): Promise<LightMyRequestResponse> =>
  await app.inject({ method: 'POST', url: `/auth/qr/${id}/${name}`, headers: bearer(token) })
const collect = async (app: FastifyInstance, id: string, secret?: string): Promise<LightMyRequestResponse> =>
  await app.inject({ method: 'POST', url: `/auth/qr/${id}/token`, headers: WEB, payload: secret === undefined ? {} : { secret } })
const coded = (res: LightMyRequestResponse): [number, string] => [res.statusCode, res.json().code]
/** The states an event stream sent, once it ended. */
const states = (res: LightMyRequestResponse): string[] =>
  [...res.body.matchAll(/^data: (.*)$/gm)].map((m) => (JSON.parse(m[1] as string) as { state: string }).state)

test('web QR login on 2 instances sharing one Redis', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const [a, b] = await Promise.all([0, 1].map(async () => await buildApp(t, { sim, redisServer: redis }))) as [FastifyInstance, FastifyInstance]

  t.test('end to end: made and followed on A (SSE), scanned and confirmed on B, collected once on A', async (t) => {
    const { id, secret, expiresIn } = await create(a)
    t.equal(expiresIn, 300)
    const events = a.inject({ method: 'GET', url: `/auth/qr/${id}/events` })
    const mp = await login(b, 'alice.q1')
    const scanned = await step(b, mp.accessToken, id, 'scan')
    t.equal(scanned.statusCode, 200)
    t.match(scanned.json(), { state: 'scanned', client: { ip: '127.0.0.1', userAgent: 'Mozilla/5.0 (Desk)', createdAt: String } }, 'what is asking, for the confirmation screen')
    t.match((await a.inject(`/auth/qr/${id}`)).json(), { state: 'scanned' }, 'polling on A sees the scan made on B')
    t.match((await step(b, mp.accessToken, id, 'confirm')).json(), { state: 'confirmed' })
    const stream = await events
    t.equal(stream.statusCode, 200)
    t.match(stream.headers['content-type'], /^text\/event-stream/)
    const seen = states(stream)
    t.equal(seen[0], 'pending', 'the stream starts with the state then')
    t.equal(seen.at(-1), 'confirmed', 'and ends with the confirm made on B')
    const web = await collect(a, id, secret)
    t.equal(web.statusCode, 200)
    const pair = web.json<Pair>()
    t.equal(pair.openid, mp.openid, 'the confirming user')
    const sessions = (await a.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(pair.accessToken) })).json<{ sessions: Array<{ deviceType: string, userAgent: string, current: boolean }> }>().sessions
    t.match(sessions.find((s) => s.current), { deviceType: 'web', userAgent: 'Mozilla/5.0 (Desk)' }, 'a new `web` session')
    t.same(coded(await collect(b, id, secret)), [409, 'AUTH_QR_COLLECTED'], 'exactly once, on any instance')
    t.same(states(await a.inject(`/auth/qr/${id}/events`)), ['confirmed'], 'a stream of an ended login ends at once')
  })

  t.test('the image: PNG bytes from wxacode.getUnlimited with the id as scene, which fits WeChat\'s rule', async (t) => {
    const { id } = await create(a)
    t.equal(id.length, 22)
    t.equal(Buffer.from(id, 'base64url').length, 16, '128 bits')
    t.ok(SCENE.test(id), 'a valid scene: at most 32 characters of WeChat\'s set')
    t.notOk(SCENE.test('123e4567-e89b-12d3-a456-426614174000'), 'a dashed UUID would not be (36 characters)')
    t.notOk(SCENE.test('a%20b'), 'nor anything URL-encoded')
    const res = await b.inject(`/auth/qr/${id}/image`)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-type'], 'image/png')
    t.same(res.rawPayload.subarray(0, 8), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'PNG bytes')
    t.match(sim.calls.at(-1), { path: '/wxa/getwxacodeunlimit', code: id, errcode: 0 }, 'WeChat was asked for this scene')
    t.same(coded(await a.inject('/auth/qr/AAAAAAAAAAAAAAAAAAAAAA/image')), [404, 'AUTH_QR_NOT_FOUND'])
  })

  t.test('refusals, each with its code', async (t) => {
    const { id, secret } = await create(a)
    const [alice, bob] = [await login(a, 'alice.q2'), await login(b, 'bob.q2')]
    t.same(coded(await step(a, alice.accessToken, id, 'confirm')), [409, 'AUTH_QR_STATE'], 'confirm before scan')
    t.same(coded(await collect(a, id, secret)), [409, 'AUTH_QR_STATE'], 'collect before confirm')
    t.same(coded(await a.inject({ method: 'POST', url: `/auth/qr/${id}/scan` })), [401, 'AUTH_TOKEN_MISSING'])
    t.equal((await step(b, alice.accessToken, id, 'scan')).statusCode, 200)
    t.same(coded(await step(a, bob.accessToken, id, 'scan')), [403, 'AUTH_QR_OTHER_USER'], 'a second user scans')
    t.same(coded(await step(a, bob.accessToken, id, 'confirm')), [403, 'AUTH_QR_OTHER_USER'], 'a second user confirms')
    t.equal((await step(a, alice.accessToken, id, 'confirm')).statusCode, 200)
    t.same(coded(await step(b, bob.accessToken, id, 'confirm')), [403, 'AUTH_QR_OTHER_USER'], 'a confirm by a second user after the first')
    t.same(coded(await collect(a, id)), [400, 'FST_ERR_VALIDATION'], 'a collect without the secret')
    t.same(coded(await collect(a, id, 'not-the-secret')), [403, 'AUTH_QR_SECRET_INVALID'], 'a collect with another secret')
    t.same(coded(await step(a, alice.accessToken, id, 'cancel')), [409, 'AUTH_QR_STATE'], 'no cancel after confirm')
    t.same(coded(await a.inject('/auth/qr/not-an-id')), [400, 'FST_ERR_VALIDATION'])
    t.same(coded(await a.inject('/auth/qr/AAAAAAAAAAAAAAAAAAAAAA')), [404, 'AUTH_QR_NOT_FOUND'])
    t.same(coded(await a.inject('/auth/qr/AAAAAAAAAAAAAAAAAAAAAA/events')), [404, 'AUTH_QR_NOT_FOUND'], 'an unknown stream: JSON, no stream')
    t.same(coded(await a.inject(`/auth/qr/${id}/events?since=0`)), [400, 'FST_ERR_VALIDATION'], 'a stream takes no query')
    t.equal((await collect(b, id, secret)).statusCode, 200, 'the secret still collects')
  })

  t.test('cancelled: the stream ends with it, collect is refused', async (t) => {
    const { id, secret } = await create(a)
    const mp = await login(a, 'carol.q1')
    await step(a, mp.accessToken, id, 'scan')
    t.match((await step(b, mp.accessToken, id, 'cancel')).json(), { state: 'cancelled' })
    t.same(states(await a.inject(`/auth/qr/${id}/events`)), ['cancelled'])
    const calls = sim.calls.length
    const image = await a.inject(`/auth/qr/${id}/image`)
    t.same([...coded(image), image.json().detail], [409, 'AUTH_QR_STATE', { state: 'cancelled' }], 'no image of a code no one may scan')
    t.equal(sim.calls.length, calls, 'and no WeChat call for it')
    const res = await collect(a, id, secret)
    t.same([...coded(res), res.json().detail], [409, 'AUTH_QR_STATE', { state: 'cancelled' }])
  })

  t.test('expired: polled as expired, every step and collect refused, the stream ends', async (t) => {
    const { id, secret } = await create(a)
    const mp = await login(a, 'dave.q1')
    await step(a, mp.accessToken, id, 'scan')
    await redisClient(t, redis.url).hset(`${redis.prefix}qr:{${id}}`, 'e', String(Date.now() - 1000)) // the clock moved on
    t.match((await b.inject(`/auth/qr/${id}`)).json(), { state: 'expired', expiresIn: 0 })
    t.same(coded(await step(a, mp.accessToken, id, 'confirm')), [410, 'AUTH_QR_EXPIRED'])
    t.same(coded(await collect(a, id, secret)), [410, 'AUTH_QR_EXPIRED'])
    t.same(coded(await a.inject(`/auth/qr/${id}/image`)), [410, 'AUTH_QR_EXPIRED'])
    t.same(states(await a.inject(`/auth/qr/${id}/events`)), ['expired'])
  })

  t.test('the confirming session ended before the collect: AUTH_QR_SESSION_ENDED', async (t) => {
    const { id, secret } = await create(a)
    const mp = await login(a, 'erin.q1')
    await step(a, mp.accessToken, id, 'scan')
    await step(a, mp.accessToken, id, 'confirm')
    await a.inject({ method: 'POST', url: '/auth/logout', headers: bearer(mp.accessToken) })
    t.same(coded(await collect(a, id, secret)), [409, 'AUTH_QR_SESSION_ENDED'])
  })
})

test('a refusal the user can fix (device in use), or the store failing while the session opens, leaves the QR login collectable', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { EXCLUSIVE_DEVICE_TYPES: 'web', EXCLUSIVE_MODE: 'refuse' } })
  const mp = await login(app, 'zed.q1')
  const confirmed = async (): Promise<{ id: string, secret: string }> => {
    const made = await create(app)
    await step(app, mp.accessToken, made.id, 'scan')
    await step(app, mp.accessToken, made.id, 'confirm')
    return made
  }
  const firstQr = await confirmed()
  const first = (await collect(app, firstQr.id, firstQr.secret)).json<Pair>()
  const { id, secret } = await confirmed()
  t.same(coded(await collect(app, id, secret)), [403, 'AUTH_DEVICE_IN_USE'], 'the user\'s web session lives')
  t.match((await app.inject(`/auth/qr/${id}`)).json(), { state: 'confirmed' })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(first.accessToken) })

  const store = app.wechatAuthStore
  const createSession = store.createSession
  store.createSession = async () => { store.createSession = createSession; throw new StoreUnavailableError() }
  t.teardown(() => { store.createSession = createSession })
  t.same(coded(await collect(app, id, secret)), [503, 'STORE_UNAVAILABLE'], 'the store fails as the session is opened')

  const web = await collect(app, id, secret)
  t.equal(web.statusCode, 200, 'the retry, once the other web session signed out and the store answers, collects')
  t.equal(web.json<Pair>().openid, mp.openid)
  t.same(coded(await collect(app, id, secret)), [409, 'AUTH_QR_COLLECTED'], 'once')
})

test('no query string on any QR route, no body on scan, confirm and cancel: one is refused with 400, the login unchanged', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  const { id, secret } = await create(app)
  const mp = bearer((await login(app, 'hilda.q1')).accessToken)
  const calls = sim.calls.length
  const cases: Array<[string, InjectOptions]> = [
    ['a scan with a body', { method: 'POST', url: `/auth/qr/${id}/scan`, headers: mp, payload: { x: 1 } }],
    ['a scan with a query', { method: 'POST', url: `/auth/qr/${id}/scan?x=1`, headers: mp }],
    ['a confirm with a body', { method: 'POST', url: `/auth/qr/${id}/confirm`, headers: mp, payload: { confirm: true } }],
    ['a cancel with a body', { method: 'POST', url: `/auth/qr/${id}/cancel`, headers: mp, payload: { reason: 'no' } }],
    ['a poll with a cache-buster', { method: 'GET', url: `/auth/qr/${id}?_=1700000000000` }],
    ['the image with a size', { method: 'GET', url: `/auth/qr/${id}/image?width=430` }],
    ['a create with a query', { method: 'POST', url: `/auth/qr?appid=${sim.appid}`, headers: WEB }],
    ['a collect with a query', { method: 'POST', url: `/auth/qr/${id}/token?x=1`, headers: WEB, payload: { secret } }]
  ]
  for (const [what, options] of cases) t.same(coded(await app.inject(options)), [400, 'FST_ERR_VALIDATION'], what)
  t.match((await app.inject(`/auth/qr/${id}`)).json(), { state: 'pending' }, 'not scanned')
  t.equal(sim.calls.length, calls, 'WeChat not asked for an image')

  // No body, an empty JSON body and {} all mean "none".
  t.match((await app.inject({ method: 'POST', url: `/auth/qr/${id}/scan`, headers: mp, payload: {} })).json(), { state: 'scanned' }, '{}')
  t.match((await app.inject({ method: 'POST', url: `/auth/qr/${id}/confirm`, headers: { ...mp, 'content-type': 'application/json' }, payload: '' })).json(), { state: 'confirmed' }, 'an empty JSON body')
  const spoofed = await app.inject({ method: 'POST', url: `/auth/qr/${id}/token`, headers: WEB, payload: { secret, deviceName: 'Chrome\u202e' } })
  t.same(coded(spoofed), [400, 'FST_ERR_VALIDATION'], 'a device name with a bidi override')
  t.equal((await collect(app, id, secret)).statusCode, 200)
})

test('WeChat\'s JSON error answer to wxacode.getUnlimited is a coded error (a page not released: 41030)', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, config: { QR_PAGE: 'missing/login' } })
  const { id } = await create(app)
  t.same(coded(await app.inject(`/auth/qr/${id}/image`)), [502, 'WX_QR_PAGE_REJECTED'])
  t.match(sim.calls.at(-1), { path: '/wxa/getwxacodeunlimit', errcode: 41030 })
})

test('with the memory store: the stream hears the confirm through the in-process emitter', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim })
  const { id, secret } = await create(app)
  const events = app.inject(`/auth/qr/${id}/events`)
  const mp = await login(app, 'frank.q1')
  await step(app, mp.accessToken, id, 'scan')
  await step(app, mp.accessToken, id, 'confirm')
  t.same(states(await events), ['pending', 'scanned', 'confirmed'], 'every change, in order')
  t.equal((await collect(app, id, secret)).statusCode, 200)
  t.equal((await me(app, mp.accessToken)).statusCode, 200, 'the mini program\'s session lives on')
})

test('no QR secret in any log line, at trace level', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const logs: string[] = []
  const app = await buildApp(t, { sim, redisServer: redis, logs })
  const { id, secret } = await create(app)
  const mp = await login(app, 'gina.q1')
  await app.inject(`/auth/qr/${id}/image`)
  await step(app, mp.accessToken, id, 'scan')
  await collect(app, id, secret)
  await step(app, mp.accessToken, id, 'confirm')
  await collect(app, id, secret)
  await collect(app, id, secret)
  await collect(app, id, `${secret}x`)
  const text = logs.join('\n')
  t.ok(logs.length > 10, `captured ${logs.length} lines`)
  t.notOk(text.includes(secret), 'no QR secret in the logs')
  t.notOk(text.includes(sim.accessTokenOf() as string), 'no access_token of WeChat\'s')
})
