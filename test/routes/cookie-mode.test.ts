// Cookie mode (REFRESH_COOKIE): a web device type's refresh token travels only in an HttpOnly cookie,
// for every way a web session is opened (ticket exchange, QR collect, H5 login) and refreshed, with a
// CSRF defence on the refresh; mini-program clients keep the JSON body. Real Redis, the simulator.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { test } from 'tap'
import { request } from 'undici'
import { bearer, buildApp, JWT_SECRET, login, me, refresh, startRedis, startSim, type Pair } from '../helper.js'

const PAGE = 'https://h5.example.com/app/'
const CSRF = { 'x-wechat-auth-csrf': '1' }
type Cookie = LightMyRequestResponse['cookies'][number]

const refreshCookie = (res: LightMyRequestResponse, name = 'wxauth-refresh'): Cookie | undefined => res.cookies.find((c) => c.name === name)
const coded = (res: LightMyRequestResponse): [number, string] => [res.statusCode, res.json().code]
/** The answer has no refresh token, nor the cookie's value anywhere in its text. */
const noTokenIn = (res: LightMyRequestResponse, cookie: Cookie | undefined): boolean =>
  !('refreshToken' in res.json()) && cookie !== undefined && cookie.value.length > 40 && !res.body.includes(cookie.value)
const fromCookie = async (app: FastifyInstance, value: string, headers: Record<string, string> = CSRF, name = 'wxauth-refresh'): Promise<LightMyRequestResponse> =>
  await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `${name}=${value}`, ...headers } })

async function ticketExchange (app: FastifyInstance, mp: Pair, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  const { ticket } = (await app.inject({ method: 'POST', url: '/auth/tickets', headers: bearer(mp.accessToken) })).json<{ ticket: string }>()
  return await app.inject({ method: 'POST', url: '/auth/tickets/exchange', payload: { ticket }, headers })
}

test('cookie mode for web clients', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    config: {
      REFRESH_COOKIE: 'web,h5',
      WECHAT_OA_APPID: sim.officialAccount.appid,
      WECHAT_OA_SECRET: sim.officialAccount.secret,
      WECHAT_OA_AUTHORIZE_URL: `${sim.url}/connect/oauth2/authorize`,
      H5_RETURN_URLS: PAGE
    }
  })

  t.test('a mini program keeps the JSON body: no cookie for device type mp', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'alice.k1' } })
    t.equal(res.statusCode, 200)
    t.type(res.json().refreshToken, 'string')
    t.equal(res.cookies.length, 0)
    const next = await refresh(app, res.json<Pair>().refreshToken)
    t.same([next.statusCode, typeof next.json().refreshToken, next.cookies.length], [200, 'string', 0], 'a refresh with the token in the body answers it in the body')
  })

  t.test('ticket exchange, QR collect and H5 login set the cookie; the refresh token is in no JSON body', async (t) => {
    const mp = await login(app, 'bob.k1')
    const web = await ticketExchange(app, mp)
    t.equal(web.statusCode, 200)
    const cookie = refreshCookie(web)
    t.match(cookie, { path: '/auth/refresh', httpOnly: true, sameSite: 'Strict', maxAge: web.json().refreshExpiresIn })
    t.ok(noTokenIn(web, cookie), 'ticket exchange: the token only in the cookie')
    t.match(web.json(), { accessToken: String, tokenType: 'Bearer', expiresIn: 900, refreshExpiresIn: Number, openid: mp.openid })

    const { id, secret } = (await app.inject({ method: 'POST', url: '/auth/qr' })).json<{ id: string, secret: string }>()
    await app.inject({ method: 'POST', url: `/auth/qr/${id}/scan`, headers: bearer(mp.accessToken) })
    await app.inject({ method: 'POST', url: `/auth/qr/${id}/confirm`, headers: bearer(mp.accessToken) })
    const qr = await app.inject({ method: 'POST', url: `/auth/qr/${id}/token`, payload: { secret } })
    t.equal(qr.statusCode, 200)
    t.ok(noTokenIn(qr, refreshCookie(qr)), 'QR collect: the token only in the cookie')

    const start = await app.inject({ method: 'GET', url: '/auth/h5/authorize' })
    const h5Cookie = start.cookies[0] as Cookie
    const wechat = await request(`${String(start.headers.location).replace('#wechat_redirect', '')}&user=bob`)
    await wechat.body.dump()
    const page = new URL(String(wechat.headers.location))
    const h5 = await app.inject({
      method: 'POST',
      url: '/auth/h5/login',
      headers: { cookie: `${h5Cookie.name}=${h5Cookie.value}` },
      payload: { code: page.searchParams.get('code'), state: page.searchParams.get('state') }
    })
    t.equal(h5.statusCode, 200)
    t.ok(noTokenIn(h5, refreshCookie(h5)), 'H5 login: the token only in the cookie')

    const appTicket = await (async () => {
      const { ticket } = (await app.inject({ method: 'POST', url: '/auth/tickets', headers: bearer(mp.accessToken), payload: { deviceType: 'app' } })).json<{ ticket: string }>()
      return await app.inject({ method: 'POST', url: '/auth/tickets/exchange', payload: { ticket } })
    })()
    t.same([typeof appTicket.json().refreshToken, appTicket.cookies.length], ['string', 0], 'a device type REFRESH_COOKIE does not name keeps the body')
  })

  t.test('a session whose refresh token is a cookie hands its login on neither by ticket nor by QR confirm: the grant would leave the page', async (t) => {
    const mp = await login(app, 'nina.k1')
    const web = (await ticketExchange(app, mp)).json<Pair>()
    const issued = async (token: string, deviceType?: string) =>
      await app.inject({ method: 'POST', url: '/auth/tickets', headers: bearer(token), ...(deviceType === undefined ? {} : { payload: { deviceType } }) })
    for (const deviceType of ['app', 'mp', 'web', undefined]) {
      const res = await issued(web.accessToken, deviceType)
      t.same([...coded(res), res.json().detail], [403, 'AUTH_HANDOFF_REFUSED', { deviceType: 'web' }], `a web session, a ticket for ${deviceType ?? 'the default'}`)
    }
    // What the refusal stops: a script holding only the page's access token took a ticket and
    // exchanged it elsewhere (any audience; a `web` one too, its cookie landing in the attacker's jar).
    const { id, secret } = (await app.inject({ method: 'POST', url: '/auth/qr' })).json<{ id: string, secret: string }>()
    t.same(coded(await app.inject({ method: 'POST', url: `/auth/qr/${id}/scan`, headers: bearer(web.accessToken) })), [403, 'AUTH_HANDOFF_REFUSED'], 'a web session scans a QR login')
    t.same(coded(await app.inject({ method: 'POST', url: `/auth/qr/${id}/confirm`, headers: bearer(web.accessToken) })), [403, 'AUTH_HANDOFF_REFUSED'], 'nor confirms one')
    t.match((await app.inject(`/auth/qr/${id}`)).json(), { state: 'pending' }, 'the QR login is untouched')
    t.equal((await issued(mp.accessToken, 'app')).statusCode, 200, 'the mini program\'s session still hands over, to any type')
    t.equal((await app.inject({ method: 'POST', url: `/auth/qr/${id}/scan`, headers: bearer(mp.accessToken) })).statusCode, 200)
    t.equal((await app.inject({ method: 'POST', url: `/auth/qr/${id}/confirm`, headers: bearer(mp.accessToken) })).statusCode, 200)
    t.equal((await app.inject({ method: 'POST', url: `/auth/qr/${id}/token`, payload: { secret } })).statusCode, 200)
  })

  t.test('refresh from the cookie rotates it; the answer has no refresh token; logout clears it', async (t) => {
    const mp = await login(app, 'carol.k1')
    const first = refreshCookie(await ticketExchange(app, mp)) as Cookie
    const res = await fromCookie(app, first.value)
    t.equal(res.statusCode, 200)
    const second = refreshCookie(res) as Cookie
    t.not(second.value, first.value, 'a new refresh token')
    t.match(second, { path: '/auth/refresh', httpOnly: true, sameSite: 'Strict' })
    t.ok(noTokenIn(res, second))
    t.equal((await me(app, res.json().accessToken)).statusCode, 200, 'the new access token works')
    const third = await fromCookie(app, second.value)
    t.equal(third.statusCode, 200, 'and the rotated cookie refreshes again')

    const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(third.json().accessToken) })
    t.equal(out.statusCode, 204)
    const cleared = refreshCookie(out)
    t.match(cleared, { value: '', path: '/auth/refresh', httpOnly: true }, 'logout clears the cookie')
    t.ok(cleared?.maxAge === 0 || (cleared?.expires !== undefined && cleared.expires.getTime() <= Date.now()), 'expired at once')
    const after = await fromCookie(app, (refreshCookie(third) as Cookie).value)
    t.same(coded(after), [401, 'AUTH_REFRESH_INVALID'], 'the session ended')
    t.match(refreshCookie(after), { value: '' }, 'a dead refresh token\'s cookie is cleared')
  })

  t.test('ending this very session from the list of devices clears its cookie, as logout does; ending another does not', async (t) => {
    const mp = await login(app, 'paula.k1')
    const web = await ticketExchange(app, mp)
    const token = web.json<Pair>().accessToken
    const sessions = (await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(token) })).json<{ sessions: Array<{ sessionId: string, current: boolean }> }>().sessions
    const [own, other] = [sessions.find((s) => s.current), sessions.find((s) => !s.current)]
    const otherEnded = await app.inject({ method: 'DELETE', url: `/auth/sessions/${String(other?.sessionId)}`, headers: bearer(token) })
    t.same([otherEnded.statusCode, refreshCookie(otherEnded)], [204, undefined], 'the mini program\'s session: this page keeps its cookie')
    const ownEnded = await app.inject({ method: 'DELETE', url: `/auth/sessions/${String(own?.sessionId)}`, headers: bearer(token) })
    t.equal(ownEnded.statusCode, 204)
    t.match(refreshCookie(ownEnded), { value: '', path: '/auth/refresh', httpOnly: true }, 'its own: cleared')
  })

  t.test('a web session\'s token sent in the body: the session\'s type decides, its successor goes in the cookie, never in a body', async (t) => {
    const mp = await login(app, 'olga.k1')
    const first = refreshCookie(await ticketExchange(app, mp)) as Cookie
    const res = await refresh(app, first.value)
    t.equal(res.statusCode, 200)
    const second = refreshCookie(res)
    t.match(second, { path: '/auth/refresh', httpOnly: true, sameSite: 'Strict', maxAge: res.json().refreshExpiresIn })
    t.not(second?.value, first.value, 'rotated')
    t.ok(noTokenIn(res, second), 'the successor only in the cookie')
    const retried = await refresh(app, first.value)
    t.same([retried.statusCode, refreshCookie(retried)?.value], [200, second?.value], 'a retry within the grace window: the same successor, in the cookie again')
    t.ok(noTokenIn(retried, refreshCookie(retried)))
    t.equal((await fromCookie(app, (second as Cookie).value)).statusCode, 200, 'the page goes on from the cookie')
    const { ticket } = (await app.inject({ method: 'POST', url: '/auth/tickets', headers: bearer(mp.accessToken), payload: { deviceType: 'app' } })).json<{ ticket: string }>()
    const appPair = (await app.inject({ method: 'POST', url: '/auth/tickets/exchange', payload: { ticket } })).json<Pair>()
    const appNext = await refresh(app, appPair.refreshToken)
    t.same([appNext.statusCode, typeof appNext.json().refreshToken, appNext.cookies.length], [200, 'string', 0], 'a type REFRESH_COOKIE does not name keeps the body')
  })

  t.test('CSRF: without the header, with another value, or cross-site, the cookie is refused', async (t) => {
    const mp = await login(app, 'dave.k1')
    const cookie = refreshCookie(await ticketExchange(app, mp)) as Cookie
    t.same(coded(await fromCookie(app, cookie.value, {})), [403, 'AUTH_CSRF_REJECTED'], 'no custom header (a form post or a simple fetch of another site)')
    t.same(coded(await fromCookie(app, cookie.value, { 'x-wechat-auth-csrf': 'yes' })), [403, 'AUTH_CSRF_REJECTED'], 'another value')
    t.same(coded(await fromCookie(app, cookie.value, { ...CSRF, 'sec-fetch-site': 'cross-site' })), [403, 'AUTH_CSRF_REJECTED'], 'the browser says cross-site')
    const formPost = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `wxauth-refresh=${cookie.value}`, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=1' })
    t.same(coded(formPost), [415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE'], 'an HTML form cannot post JSON')
    t.same(coded(await app.inject({ method: 'POST', url: '/auth/refresh', headers: CSRF })), [401, 'AUTH_REFRESH_MISSING'], 'no cookie, no body')
    const same = await fromCookie(app, cookie.value, { ...CSRF, 'sec-fetch-site': 'same-origin' })
    t.equal(same.statusCode, 200, 'the refused attempts spent nothing: the page\'s own request still refreshes')
  })

  t.test('cookie tossing: a request naming one of the gateway\'s cookies twice is refused, whichever comes first; nothing is spent or cleared', async (t) => {
    const victim = refreshCookie(await ticketExchange(app, await login(app, 'vera.k1'))) as Cookie
    const attacker = refreshCookie(await ticketExchange(app, await login(app, 'mallory.k1'))) as Cookie
    // A sibling subdomain set its own with Domain=<parent>: the browser sends both, the older first.
    for (const cookie of [`wxauth-refresh=${attacker.value}; wxauth-refresh=${victim.value}`, `wxauth-refresh=${victim.value}; a=1;  wxauth-refresh =${attacker.value}`]) {
      const res = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { ...CSRF, cookie } })
      t.same([...coded(res), res.json().detail, refreshCookie(res)], [403, 'AUTH_CSRF_REJECTED', { cause: 'cookie-twice', cookie: 'wxauth-refresh' }, undefined], cookie.replace(/=[^;]+/g, '=…'))
    }
    const onHttps = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { ...CSRF, host: 'web.example.com', cookie: `__Secure-wxauth-refresh=${attacker.value}; __Secure-wxauth-refresh=${victim.value}` } })
    t.same(coded(onHttps), [403, 'AUTH_CSRF_REJECTED'], 'the __Secure- name too')
    const others = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { ...CSRF, cookie: `__Secure-wxauth-refresh=${attacker.value}; xwxauth-refresh=1; wxauth-refresh=${victim.value}` } })
    t.equal(others.statusCode, 200, 'other names (the other prefix, a longer name) are not the cookie read')
    t.equal((await me(app, others.json().accessToken)).json().openid, (await me(app, (await ticketExchange(app, await login(app, 'vera.k2'))).json().accessToken)).json().openid, 'the victim\'s own session, its token unspent by the refusals')

    const start = await app.inject({ method: 'GET', url: '/auth/h5/authorize' })
    const h5Cookie = start.cookies[0] as Cookie
    const tossed = await app.inject({ method: 'POST', url: '/auth/h5/login', headers: { cookie: `${h5Cookie.name}=attacker-secret; ${h5Cookie.name}=${h5Cookie.value}` }, payload: { code: 'x', state: 'y' } })
    t.same([...coded(tossed), tossed.json().detail], [403, 'AUTH_CSRF_REJECTED', { cause: 'cookie-twice', cookie: 'wxauth-h5' }], 'the H5 cookie twice')
  })

  t.test('reuse of a rotated cookie ends the session and clears the cookie', async (t) => {
    const mp = await login(app, 'erin.k1')
    const old = refreshCookie(await ticketExchange(app, mp)) as Cookie
    const next = refreshCookie(await fromCookie(app, old.value)) as Cookie
    await fromCookie(app, next.value)
    const reused = await fromCookie(app, old.value)
    t.same(coded(reused), [401, 'AUTH_REFRESH_REUSED'])
    t.match(refreshCookie(reused), { value: '' })
  })

  t.test('Secure and __Secure- everywhere but plain http on localhost in development', async (t) => {
    const mp = await login(app, 'frank.k1')
    const res = await ticketExchange(app, mp, { host: 'web.example.com' })
    const cookie = refreshCookie(res, '__Secure-wxauth-refresh') as Cookie
    t.match(cookie, { secure: true, httpOnly: true, sameSite: 'Strict', path: '/auth/refresh' })
    t.same(coded(await fromCookie(app, cookie.value, CSRF, '__Secure-wxauth-refresh')), [401, 'AUTH_REFRESH_MISSING'], 'on localhost the plain name is read, not this one')
    const again = await fromCookie(app, cookie.value, { ...CSRF, host: 'web.example.com' }, '__Secure-wxauth-refresh')
    t.equal(again.statusCode, 200)
    t.match(refreshCookie(again, '__Secure-wxauth-refresh'), { secure: true })
  })
})

test('a web session opened before cookie mode was on moves into the cookie at its next refresh', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const before = await buildApp(t, { sim, redisServer: redis })
  const mp = await login(before, 'piotr.k1')
  const web = (await ticketExchange(before, mp)).json<Pair>()
  t.type(web.refreshToken, 'string', 'before: in the body')
  const after = await buildApp(t, { sim, redisServer: redis, config: { REFRESH_COOKIE: 'web' } })
  const res = await refresh(after, web.refreshToken)
  t.equal(res.statusCode, 200)
  const cookie = refreshCookie(res)
  t.ok(noTokenIn(res, cookie), 'its successor in the cookie only')
  t.equal((await fromCookie(after, (cookie as Cookie).value)).statusCode, 200)
  t.same([(await refresh(after, mp.refreshToken)).cookies.length], [0], 'the mini program\'s session keeps the body')
})

test('production: the cookie is Secure even on localhost', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { NODE_ENV: 'production', REFRESH_COOKIE: 'web', JWT_SECRET } })
  const mp = await login(app, 'grace.k1')
  const res = await ticketExchange(app, mp)
  t.match(refreshCookie(res, '__Secure-wxauth-refresh'), { secure: true, httpOnly: true, sameSite: 'Strict' })
})

test('REFRESH_COOKIE is checked at boot, and is off by default', async (t) => {
  const sim = await startSim(t)
  await t.rejects(buildApp(t, { sim, config: { REFRESH_COOKIE: 'web,tv' } }), { code: 'CONFIG_INVALID', message: /REFRESH_COOKIE must be off or name types of DEVICE_TYPES/ })
  await t.rejects(buildApp(t, { sim, config: { REFRESH_COOKIE: 'web;h5' } }), { code: 'CONFIG_INVALID', message: /REFRESH_COOKIE/ })
  const off = await buildApp(t, { sim })
  const mp = await login(off, 'heidi.k1')
  const web = await ticketExchange(off, mp)
  t.same([typeof web.json().refreshToken, web.cookies.length], ['string', 0], 'off: the web gets the body too')
  t.same(coded(await off.inject({ method: 'POST', url: '/auth/refresh', headers: CSRF })), [400, 'FST_ERR_VALIDATION'], 'off: the body is required')
})

test('a host\'s own @fastify/cookie, its options (signed, a domain) and a parent prefix do not reach the gateway\'s cookies; an outage keeps the cookie', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const { default: Fastify } = await import('fastify')
  const { default: fastifyCookie } = await import('@fastify/cookie')
  const { default: wechatAuth } = await import('../../app.js')
  const host = Fastify()
  t.teardown(async () => await host.close())
  // Signed cookies and a domain by default, for the host's own: the refresh token was signed (then never
  // read back: AUTH_REFRESH_INVALID) and the cookie widened to every subdomain.
  await host.register(fastifyCookie, { secret: 'a-host-cookie-secret-0123456789abcdef', parseOptions: { signed: true, domain: 'example.com' } })
  host.get('/whoami', async (request) => ({ cookies: Object.keys(request.cookies) }))
  await host.register(async (api) => {
    await api.register(wechatAuth, {
      env: false,
      config: { LOG_LEVEL: 'silent', WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, JWT_SECRET, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, REFRESH_COOKIE: 'web' }
    })
  }, { prefix: '/api' })
  await host.ready()
  const mp = (await host.inject({ method: 'POST', url: '/api/auth/login', payload: { code: 'ivan.k1' } })).json<Pair>()
  const { ticket } = (await host.inject({ method: 'POST', url: '/api/auth/tickets', headers: bearer(mp.accessToken) })).json<{ ticket: string }>()
  const web = await host.inject({ method: 'POST', url: '/api/auth/tickets/exchange', payload: { ticket } })
  const cookie = refreshCookie(web) as Cookie
  t.match(cookie, { name: 'wxauth-refresh', httpOnly: true, sameSite: 'Strict', path: '/api/auth/refresh' }, 'the path of the route that reads it, under the host\'s prefix')
  t.equal(cookie.domain, undefined, 'no Domain: the host\'s default is its own')
  const fromApi = async (value: string): Promise<LightMyRequestResponse> =>
    await host.inject({ method: 'POST', url: '/api/auth/refresh', headers: { ...CSRF, cookie: `wxauth-refresh=${value}` } })
  const next = await fromApi(cookie.value)
  t.equal(next.statusCode, 200, 'the token as it was given, unsigned, refreshes')
  t.match(refreshCookie(next), { path: '/api/auth/refresh' })
  t.same((await host.inject({ url: '/whoami', headers: { cookie: 'a=1' } })).json(), { cookies: ['a'] }, 'the host\'s cookie parsing is its own')
  await redis.stop()
  const down = await fromApi((refreshCookie(next) as Cookie).value)
  t.same(coded(down), [503, 'STORE_UNAVAILABLE'])
  t.equal(refreshCookie(down), undefined, 'the cookie is kept: the token may still be good')
})
