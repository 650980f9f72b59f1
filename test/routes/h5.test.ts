// H5 login (an official account's web authorization) through HTTP, on a real Redis and the
// simulator: WeChat's authorize page is the simulator's, which sends the "browser" back to the page
// with a code, as WeChat does.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { test } from 'tap'
import { request } from 'undici'
import { StoreUnavailableError } from '../../lib/errors.js'
import type { WeChatIdentity } from '../../lib/sessions-deps.js'
import type { Simulator } from '../../simulator/index.js'
import { bearer, buildApp, login, me, startRedis, startSim, type BuildOptions, type Pair, type RedisServer } from '../helper.js'

type Tap = Parameters<typeof startSim>[0]
const PAGE = 'https://h5.example.com/app/'
const WX_BROWSER = { 'user-agent': 'Mozilla/5.0 (iPhone) MicroMessenger/8.0.50' }

/** What an official account's configuration for these tests looks like. */
const h5Config = (sim: Simulator) => ({
  WECHAT_OA_APPID: sim.officialAccount.appid,
  WECHAT_OA_SECRET: sim.officialAccount.secret,
  WECHAT_OA_AUTHORIZE_URL: `${sim.url}/connect/oauth2/authorize`,
  H5_RETURN_URLS: `${PAGE},https://h5.example.com/me`
})

async function h5App (t: Tap, sim: Simulator, redis: RedisServer, opts: Partial<BuildOptions> = {}): Promise<FastifyInstance> {
  return await buildApp(t, { sim, redisServer: redis, ...opts, config: { ...h5Config(sim), ...opts.config } })
}

/** A browser's start: the answer, where it is sent, and the cookie it now holds (as a Cookie header). */
async function authorize (app: FastifyInstance, query: Record<string, string> = {}): Promise<{ res: LightMyRequestResponse, location: URL, cookie: string }> {
  const res = await app.inject({ method: 'GET', url: '/auth/h5/authorize', query, headers: WX_BROWSER })
  const set = res.cookies[0]
  return { res, location: new URL(String(res.headers.location ?? 'http://none/')), cookie: set === undefined ? '' : `${set.name}=${set.value}` }
}

/** WeChat's page: the user (allows or denies), then 302 back to the page with code and state. */
async function wechatSendsBack (location: URL, user: string, deny = false): Promise<{ code?: string, state?: string, page: URL }> {
  const url = new URL(location)
  url.hash = ''
  url.searchParams.set('user', user)
  if (deny) url.searchParams.set('deny', '1')
  const res = await request(url)
  await res.body.dump()
  if (res.statusCode !== 302) throw new Error(`the authorize page answered ${res.statusCode}`)
  const page = new URL(String(res.headers.location))
  const code = page.searchParams.get('code') ?? undefined
  return { ...(code !== undefined ? { code } : {}), state: page.searchParams.get('state') ?? undefined, page }
}

const finish = async (app: FastifyInstance, body: Record<string, unknown> | null, cookie: string): Promise<LightMyRequestResponse> =>
  await app.inject({ method: 'POST', url: '/auth/h5/login', headers: { ...WX_BROWSER, ...(cookie === '' ? {} : { cookie }) }, ...(body === null ? {} : { payload: body }) })

/** A whole H5 login of `user`: authorize, WeChat, the page's post. */
async function h5Login (app: FastifyInstance, user: string, query: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  const { location, cookie } = await authorize(app, query)
  const { code, state } = await wechatSendsBack(location, user)
  return await finish(app, { code, state }, cookie)
}

const coded = (res: LightMyRequestResponse): [number, string] => [res.statusCode, res.json().code]

test('H5 login, with the mini program\'s users linked by unionid', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  // A host that keys its users by unionid, as one serving a mini program and H5 pages does.
  const seen: WeChatIdentity[] = []
  const users = new Map<string, string>()
  const resolveUser = async (identity: WeChatIdentity) => {
    seen.push(identity)
    const key = identity.unionid ?? `${identity.source ?? 'mp'}:${identity.openid}`
    if (!users.has(key)) users.set(key, `user-${users.size + 1}`)
    return { userId: users.get(key) as string }
  }
  const app = await h5App(t, sim, redis, { resolveUser })
  const oa = sim.officialAccount.appid

  t.test('authorize: 302 to WeChat\'s page with a state, and an HttpOnly cookie for this browser only', async (t) => {
    const { res, location } = await authorize(app)
    t.equal(res.statusCode, 302)
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(`${location.origin}${location.pathname}`, `${sim.url}/connect/oauth2/authorize`)
    t.equal(location.hash, '#wechat_redirect')
    t.match(Object.fromEntries(location.searchParams), { appid: oa, redirect_uri: PAGE, response_type: 'code', scope: 'snsapi_base', state: /^[\w.-]{40,128}$/ })
    t.match(res.cookies[0], { name: 'wxauth-h5', path: '/auth/h5', httpOnly: true, sameSite: 'Strict', maxAge: 300 }, 'plain http on localhost: not Secure, no prefix')
    t.notOk(res.cookies[0]?.secure)
    t.not(res.cookies[0]?.value, location.searchParams.get('state'), 'the cookie is not the state')
    const onHttps = await app.inject({ method: 'GET', url: '/auth/h5/authorize', headers: { host: 'h5.example.com' } })
    t.match(onHttps.cookies[0], { name: '__Secure-wxauth-h5', secure: true, httpOnly: true, sameSite: 'Strict' }, 'anywhere else: Secure, __Secure- prefix')
  })

  t.test('the same user as in the mini program when the unionid matches: the same sub, another openid', async (t) => {
    const mp = await login(app, 'alice.h1')
    const res = await h5Login(app, 'alice')
    t.equal(res.statusCode, 200)
    const pair = res.json<Pair>()
    t.equal(pair.openid, sim.openidOf('alice', oa), 'the official account\'s openid')
    t.not(pair.openid, mp.openid, 'which is not the mini program\'s')
    t.equal(pair.unionid, sim.unionidOf('alice'))
    t.match(seen.at(-1), { source: 'h5', officialAccount: oa, appid: sim.appid, openid: pair.openid, unionid: sim.unionidOf('alice') }, 'resolveUser is told the source and the unionid')
    t.notOk('userInfo' in (seen.at(-1) ?? {}), 'no user info with snsapi_base')
    t.match(seen.find((i) => i.openid === mp.openid), { source: 'mp' })
    const [mpSub, h5Sub] = await Promise.all([mp.accessToken, pair.accessToken].map(async (token) =>
      JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).sub as string))
    t.equal(h5Sub, mpSub, 'one user: the same sub')
    const sessions = (await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(pair.accessToken) })).json<{ sessions: Array<{ deviceType: string, userAgent: string, current: boolean }> }>().sessions
    t.same(sessions.map((s) => s.deviceType).sort(), ['h5', 'mp'], 'both sessions are the user\'s')
    t.match(sessions.find((s) => s.current), { deviceType: 'h5', userAgent: /^Mozilla\/5.0 \(iPhone\)/ })
    t.equal((await me(app, pair.accessToken)).statusCode, 200)
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })
    t.equal(refreshed.statusCode, 200, 'an h5 session refreshes like any other')
    const decrypt = await app.inject({ method: 'POST', url: '/auth/wechat/decrypt', headers: bearer(pair.accessToken), payload: { encryptedData: 'AAAAAAAAAAAAAAAAAAAAAA==', iv: 'AAAAAAAAAAAAAAAAAAAAAA==' } })
    t.same([...coded(decrypt), decrypt.json().detail], [401, 'WX_SESSION_KEY_STALE', { cause: 'no-session-key' }], 'an h5 session has no session_key')
  })

  t.test('snsapi_userinfo: WeChat asks the user, resolveUser gets the nickname and avatar', async (t) => {
    const res = await h5Login(app, 'bob', { scope: 'snsapi_userinfo' })
    t.equal(res.statusCode, 200)
    t.match(seen.at(-1), { source: 'h5', unionid: sim.unionidOf('bob'), userInfo: { nickname: 'Bob', headimgurl: /^https:\/\/.*\/bob\// } })
    t.match(sim.calls.slice(-2), [{ path: '/sns/oauth2/access_token', errcode: 0 }, { path: '/sns/userinfo', errcode: 0 }])
    const { location, cookie } = await authorize(app, { scope: 'snsapi_userinfo' })
    const declined = await wechatSendsBack(location, 'bob', true)
    t.notOk(declined.code, 'a user who declines comes back with a state only')
    t.same(coded(await finish(app, { state: declined.state }, cookie)), [400, 'AUTH_H5_CODE_MISSING'])
  })

  t.test('the state: missing, forged, from another browser, reused, expired, each refused with its code', async (t) => {
    const first = await authorize(app)
    const other = await authorize(app)
    const back = await wechatSendsBack(first.location, 'carol')
    t.same(coded(await finish(app, null, first.cookie)), [400, 'AUTH_H5_STATE_MISSING'], 'no body at all')
    t.same(coded(await finish(app, { code: back.code }, first.cookie)), [400, 'AUTH_H5_STATE_MISSING'])
    const forged = (back.state as string).replace(/\.([bu])\./, (_m, s: string) => `.${s === 'b' ? 'u' : 'b'}.`)
    t.same(coded(await finish(app, { code: back.code, state: forged }, first.cookie)), [400, 'AUTH_H5_STATE_INVALID'], 'a state whose scope was changed')
    t.same(coded(await finish(app, { code: back.code, state: 'not-a-state' }, first.cookie)), [400, 'AUTH_H5_STATE_INVALID'])
    t.same(coded(await finish(app, { code: back.code, state: back.state }, '')), [403, 'AUTH_H5_STATE_OTHER_BROWSER'], 'a browser without the cookie')
    t.same(coded(await finish(app, { code: back.code, state: back.state }, other.cookie)), [403, 'AUTH_H5_STATE_OTHER_BROWSER'], 'the cookie of another login (login CSRF)')
    t.equal(sim.calls.filter((c) => c.code === back.code).length, 0, 'WeChat never saw the code of a refused state')
    // Refused with its own state, the code is spent: no browser redeems it after (the refusal clears
    // the H5 cookie of the browser it answers anyway), not even with the right cookie.
    t.same(coded(await finish(app, { code: back.code, state: back.state }, first.cookie)), [401, 'WX_OAUTH_CODE_USED'], 'spent by the refusals')
    const again = await authorize(app)
    const backAgain = await wechatSendsBack(again.location, 'carol')
    const ok = await finish(app, { code: backAgain.code, state: backAgain.state }, again.cookie)
    t.equal(ok.statusCode, 200)
    t.match(ok.cookies.find((c) => c.name === 'wxauth-h5'), { value: '', maxAge: 0 }, 'the browser\'s H5 cookie is cleared')
    t.same(coded(await finish(app, { code: backAgain.code, state: backAgain.state }, again.cookie)), [409, 'AUTH_H5_STATE_USED'], 'a state works once')

    const late = await authorize(app)
    const lateBack = await wechatSendsBack(late.location, 'carol')
    const now = Date.now()
    t.intercept(Date, 'now', { value: () => now + 301_000 }) // the gateway's clock, past H5_STATE_TTL
    t.same(coded(await finish(app, { code: lateBack.code, state: lateBack.state }, late.cookie)), [410, 'AUTH_H5_STATE_EXPIRED'])
  })

  t.test('returnTo: only the pages of H5_RETURN_URLS (no open redirect)', async (t) => {
    const deep = await authorize(app, { returnTo: `${PAGE}orders?id=5` })
    t.equal(deep.location.searchParams.get('redirect_uri'), `${PAGE}orders?id=5`, 'a page under an entry, its query kept')
    const back = await wechatSendsBack(deep.location, 'dave')
    t.equal(`${back.page.origin}${back.page.pathname}`, `${PAGE}orders`)
    t.equal(back.page.searchParams.get('id'), '5', 'WeChat adds code and state to the page\'s own query')
    t.equal((await authorize(app, { returnTo: 'https://h5.example.com/me' })).res.statusCode, 302, 'an entry without a trailing / allows itself')
    for (const returnTo of [
      'https://evil.example.com/app/', 'https://h5.example.com.evil.com/app/', 'https://h5.example.com/app/../admin', 'https://h5.example.com/app/%2e%2e/admin',
      'https://user@h5.example.com/app/', 'http://h5.example.com/app/', 'https://h5.example.com:8443/app/', 'https://h5.example.com/application',
      'https://h5.example.com/me/more', 'https://h5.example.com/app/#frag', 'https://h5.example.com/app/..%2fadmin', '//evil.example.com/app/', '/app/', 'javascript:alert(1)//h5.example.com/app/'
    ]) {
      const { res } = await authorize(app, { returnTo })
      t.same([...coded(res), res.headers.location, res.cookies.length], [400, 'AUTH_H5_RETURN_TO_REFUSED', undefined, 0], returnTo)
    }
    const bad = await app.inject({ method: 'GET', url: '/auth/h5/authorize', query: { scope: 'snsapi_login' } })
    t.same(coded(bad), [400, 'FST_ERR_VALIDATION'], 'a scope WeChat does not have')
  })

  t.test('returnTo carrying its own code or state is refused: WeChat appends its own, and a page reading the first code would take an attacker\'s', async (t) => {
    // The attacker stops his own H5 login at WeChat's redirect: an unused code of his account.
    const mine = await authorize(app)
    const attackerCode = (await wechatSendsBack(mine.location, 'mallory')).code as string
    for (const returnTo of [`${PAGE}?code=${attackerCode}`, `${PAGE}orders?id=5&code=${attackerCode}`, `${PAGE}?state=x`, `${PAGE}?Code=${attackerCode}`, `${PAGE}?next=/app/?code=${attackerCode}`, `${PAGE}?x=%26code%3D${attackerCode}`]) {
      const { res } = await authorize(app, { returnTo })
      t.same([...coded(res), res.headers.location, res.cookies.length], [400, 'AUTH_H5_RETURN_TO_REFUSED', undefined, 0], returnTo)
    }
    t.equal(sim.calls.filter((c) => c.code === attackerCode).length, 0, 'the attacker\'s code was never exchanged')
  })

  t.test('the simulator appends code and state to redirect_uri as WeChat does, keeping a code already there first', async (t) => {
    // A redirect_uri the gateway would never send: WeChat's behaviour, which the rule above answers.
    const url = new URL(`${sim.url}/connect/oauth2/authorize`)
    url.search = new URLSearchParams({ appid: oa, redirect_uri: `${PAGE}?code=first&id=5`, response_type: 'code', scope: 'snsapi_base', state: 'st', user: 'alice' }).toString()
    const res = await request(url)
    await res.body.dump()
    const page = new URL(String(res.headers.location))
    t.same(page.searchParams.getAll('code').length, 2, 'appended, not replaced')
    t.equal(page.searchParams.get('code'), 'first', 'the first code is the one already there')
    t.match(page.search, /^\?code=first&id=5&code=alice\.[\w-]+&state=st$/, 'the page\'s own query unchanged, then WeChat\'s')
  })

  t.test('the page\'s post takes no query string, and a device name without control or bidi characters; a refusal spends no state', async (t) => {
    const { location, cookie } = await authorize(app)
    const back = await wechatSendsBack(location, 'gus')
    const body = { code: back.code as string, state: back.state as string }
    const queried = await app.inject({ method: 'POST', url: `/auth/h5/login?${new URLSearchParams(body).toString()}`, headers: { ...WX_BROWSER, cookie }, payload: body })
    t.same(coded(queried), [400, 'FST_ERR_VALIDATION'], 'code and state in the query too')
    t.same(coded(await finish(app, { ...body, deviceName: 'WeChat\u202e' }, cookie)), [400, 'FST_ERR_VALIDATION'], 'a bidi override in the device name')
    t.equal((await finish(app, { ...body, deviceName: '微信 H5 页面' }, cookie)).statusCode, 200, 'the state was not spent')
  })

  t.test('WeChat\'s errors, mapped to stable codes', async (t) => {
    t.same(coded(await h5Login(app, 'invalid')), [401, 'WX_OAUTH_CODE_INVALID'], '40029')
    t.same(coded(await h5Login(app, 'limit')), [429, 'WX_RATE_LIMITED'], '45011')
    t.same(coded(await h5Login(app, 'garbage')), [502, 'WX_BAD_RESPONSE'], 'not JSON')
    t.equal((await h5Login(app, 'busy')).statusCode, 200, '-1 is retried once within the deadline')
    t.match(sim.calls.filter((c) => c.path === '/sns/oauth2/access_token').slice(-2), [{ errcode: -1 }, { errcode: 0 }])

    // A code someone else exchanged at WeChat first: 40163.
    const { location, cookie } = await authorize(app)
    const back = await wechatSendsBack(location, 'erin')
    const { secret, appid } = sim.officialAccount
    await (await request(`${sim.url}/sns/oauth2/access_token?${new URLSearchParams({ appid, secret, code: back.code as string, grant_type: 'authorization_code' }).toString()}`)).body.dump()
    t.same(coded(await finish(app, { code: back.code, state: back.state }, cookie)), [401, 'WX_OAUTH_CODE_USED'], '40163')
    // The same code with a fresh state of an attacker's browser (code injection): never sent to WeChat again.
    const attacker = await authorize(app)
    const calls = sim.calls.length
    const attackerState = new URL(attacker.location).searchParams.get('state') as string
    t.same(coded(await finish(app, { code: back.code, state: attackerState }, attacker.cookie)), [401, 'WX_OAUTH_CODE_USED'])
    t.equal(sim.calls.length, calls, 'a code the gateway saw is not sent again')

    // A code posted with its own state, refused (without the browser's cookie): spent all the same, so
    // that no other browser redeems it with a state of its own. A forged state spends nothing.
    const victim = await authorize(app)
    const seen = await wechatSendsBack(victim.location, 'ivan')
    t.same(coded(await finish(app, { code: seen.code, state: `${String(seen.state)}x` }, victim.cookie)), [400, 'AUTH_H5_STATE_INVALID'], 'a forged state')
    t.same(coded(await finish(app, { code: seen.code, state: seen.state }, '')), [403, 'AUTH_H5_STATE_OTHER_BROWSER'])
    const thief = await authorize(app)
    const before = sim.calls.length
    t.same(coded(await finish(app, { code: seen.code, state: new URL(thief.location).searchParams.get('state') as string }, thief.cookie)), [401, 'WX_OAUTH_CODE_USED'], 'the refused code, with another browser\'s state')
    t.equal(sim.calls.length, before, 'not sent to WeChat')
    // A forged state left a code alone: it logs in with its own state and cookie.
    const other = await authorize(app)
    const fresh = await wechatSendsBack(other.location, 'judy')
    t.same(coded(await finish(app, { code: fresh.code, state: 'x'.repeat(10) }, other.cookie)), [400, 'AUTH_H5_STATE_INVALID'])
    t.equal((await finish(app, { code: fresh.code, state: fresh.state }, other.cookie)).statusCode, 200, 'not spent by a forged state')
  })

  t.test('the store failing as the state is claimed: 503, the browser keeps its H5 cookie, and the retry with the same code and state logs in', async (t) => {
    const { location, cookie } = await authorize(app)
    const back = await wechatSendsBack(location, 'hugo')
    const store = app.wechatAuthStore
    const claimCode = store.claimCode
    store.claimCode = async () => { store.claimCode = claimCode; throw new StoreUnavailableError() }
    t.teardown(() => { store.claimCode = claimCode })
    const down = await finish(app, { code: back.code, state: back.state }, cookie)
    t.same(coded(down), [503, 'STORE_UNAVAILABLE'])
    t.equal(down.cookies.find((c) => c.name === 'wxauth-h5'), undefined, 'the H5 cookie is not cleared')
    // The browser as it is now: without its cookie had the answer cleared it.
    const kept = down.cookies.some((c) => c.name === 'wxauth-h5' && c.value === '') ? '' : cookie
    const retry = await finish(app, { code: back.code, state: back.state }, kept)
    t.equal(retry.statusCode, 200, 'not AUTH_H5_STATE_OTHER_BROWSER')
    t.match(retry.cookies.find((c) => c.name === 'wxauth-h5'), { value: '' }, 'cleared once it is done')
    const refused = await finish(app, { code: back.code, state: back.state }, cookie)
    t.same(coded(refused), [409, 'AUTH_H5_STATE_USED'])
    t.match(refused.cookies.find((c) => c.name === 'wxauth-h5'), { value: '' }, 'and after a refusal')
  })

  t.test('the session rules apply: a banned user gets no h5 session', async (t) => {
    const mp = await login(app, 'frank.h1')
    const sub = JSON.parse(Buffer.from(mp.accessToken.split('.')[1] as string, 'base64url').toString()).sub as string
    await app.wechatAuthSessions.ban({ appid: sim.appid, sub }, { reason: 'fraud' })
    t.same(coded(await h5Login(app, 'frank')), [403, 'AUTH_ACCOUNT_BANNED'])
  })
})

test('a session of H5 login cannot step up: 403 AUTH_STEP_UP_UNAVAILABLE before the code is spent', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await h5App(t, sim, redis)
  const h5 = (await h5Login(app, 'ursula')).json<Pair>()
  const res = await app.inject({ method: 'POST', url: '/auth/step-up', headers: bearer(h5.accessToken), payload: { code: 'ursula.s1' } })
  t.same(coded(res), [403, 'AUTH_STEP_UP_UNAVAILABLE'])
  t.match(res.json().detail, { cause: 'no-session-key' })
  t.notOk(sim.calls.some((c) => c.code === 'ursula.s1'), 'the code never reached WeChat (it would have rotated the session_key of the user\'s mini program)')
  t.equal((await login(app, 'ursula.s1')).openid, sim.openidOf('ursula'), 'and the mini program logs in with it')
})

test('WeChat refusing the official account\'s credentials, and a WeChat that stays busy', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const wrongSecret = await h5App(t, sim, redis, { config: { WECHAT_OA_SECRET: 'not-the-account-secret' } })
  t.same(coded(await h5Login(wrongSecret, 'alice')), [502, 'WX_CREDENTIALS_REJECTED'], '40125')
  const otherAccount = { ...h5Config(sim), WECHAT_OA_APPID: 'wx00000000000000b0' }
  const wrongAppid = await buildApp(t, { sim, redisServer: redis, config: otherAccount })
  const { location, cookie } = await authorize(wrongAppid)
  // WeChat's page refuses an appid it does not know; a code of the simulator's account, presented by another.
  const back = await wechatSendsBack(new URL(location.href.replace('wx00000000000000b0', sim.officialAccount.appid)), 'alice')
  t.same(coded(await finish(wrongAppid, { code: back.code, state: back.state }, cookie)), [502, 'WX_CREDENTIALS_REJECTED'], '40013')
  // No time for a retry: -1 is WX_UNAVAILABLE.
  const hurried = await h5App(t, sim, redis, { config: { WECHAT_TIMEOUT_MS: 150 } })
  t.same(coded(await h5Login(hurried, 'busy')), [503, 'WX_UNAVAILABLE'], '-1')
})

test('H5 login across 2 instances: a state is used once on any of them', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const [a, b] = await Promise.all([0, 1].map(async () => await h5App(t, sim, redis))) as [FastifyInstance, FastifyInstance]
  const { location, cookie } = await authorize(a)
  const back = await wechatSendsBack(location, 'grace')
  const answers = await Promise.all([a, b, a, b].map(async (app) => await finish(app, { code: back.code, state: back.state }, cookie)))
  t.same(answers.map((r) => r.statusCode).sort(), [200, 409, 409, 409], 'one login, whichever instance the page reaches')
})

test('HEAD /auth/h5/authorize (curl -I) counts in the same RATE_LIMIT_LOGIN_MAX budget as GET, not one of its own', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await h5App(t, sim, redis, { config: { RATE_LIMIT_LOGIN_MAX: 2 } })
  const answers = []
  for (const method of ['GET', 'HEAD', 'GET', 'HEAD'] as const) answers.push((await app.inject({ method, url: '/auth/h5/authorize', headers: WX_BROWSER, remoteAddress: '203.0.113.9' })).statusCode)
  t.same(answers, [302, 302, 429, 429])
})

test('H5 login is off unless an official account is configured; its keys are checked at boot', async (t) => {
  const sim = await startSim(t)
  const off = await buildApp(t, { sim })
  t.same(coded(await off.inject('/auth/h5/authorize')), [404, 'ROUTE_NOT_FOUND'])
  t.same(coded(await off.inject({ method: 'POST', url: '/auth/h5/login', payload: {} })), [404, 'ROUTE_NOT_FOUND'])
  t.equal(off.wechatAuthSessions.h5, undefined)
  await t.rejects(buildApp(t, { sim, config: { WECHAT_OA_APPID: sim.officialAccount.appid } }), { code: 'CONFIG_INVALID', message: /WECHAT_OA_APPID and WECHAT_OA_SECRET must be set together/ })
  await t.rejects(buildApp(t, { sim, config: { ...h5Config(sim), H5_RETURN_URLS: undefined } }), { message: /WECHAT_OA_APPID needs H5_RETURN_URLS/ })
  const noH5Type = await buildApp(t, { sim, config: { ...h5Config(sim), DEVICE_TYPES: 'mp,web' } })
  t.same(coded(await noH5Type.inject('/auth/h5/authorize')), [400, 'AUTH_DEVICE_TYPE_UNKNOWN'], 'h5 must be one of DEVICE_TYPES')
})

test('in development H5_RETURN_URLS alone turns H5 login on, with the built-in simulator\'s official account', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: wechatAuth } = await import('../../app.js')
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { env: false, config: { LOG_LEVEL: 'silent', WECHAT_SIMULATOR_PORT: 0, H5_RETURN_URLS: 'http://localhost:3000/' } })
  await app.ready()
  const { res, location, cookie } = await authorize(app, { returnTo: 'http://localhost:3000/h5.html' })
  t.equal(res.statusCode, 302)
  t.equal(location.pathname, '/connect/oauth2/authorize', 'the simulator\'s authorize page')
  const back = await wechatSendsBack(location, 'alice')
  t.equal(`${back.page.origin}${back.page.pathname}`, 'http://localhost:3000/h5.html')
  const pair = await finish(app, { code: back.code, state: back.state }, cookie)
  t.equal(pair.statusCode, 200)
  t.match(pair.json(), { openid: /^o[\w-]{27}$/, unionid: /^u[\w-]{27}$/ })
  t.same(coded(await authorize(app, { returnTo: 'http://example.com/' }).then((r) => r.res)), [400, 'AUTH_H5_RETURN_TO_REFUSED'])

  // The development gateway's OpenAPI document lists the H5 routes with each code and its status (the
  // default development gateway, which test/plugins/openapi.test.ts reads, has H5 login off).
  type Responses = Record<string, { content?: { 'application/json'?: { schema?: { properties?: { code?: { enum?: string[] } } } } } }>
  const doc = (await app.inject('/auth/openapi.json')).json<{ paths: Record<string, Record<string, { operationId: string, responses: Responses }>> }>()
  const listed = new Map<string, number>()
  for (const op of [doc.paths['/auth/h5/authorize']?.get, doc.paths['/auth/h5/login']?.post]) {
    for (const [status, response] of Object.entries(op?.responses ?? {})) {
      for (const code of response.content?.['application/json']?.schema?.properties?.code?.enum ?? []) listed.set(code, Number(status))
    }
  }
  t.same([doc.paths['/auth/h5/authorize']?.get?.operationId, doc.paths['/auth/h5/login']?.post?.operationId], ['h5Authorize', 'h5Login'])
  const errors = await import('../../lib/errors.js')
  const h5Codes = Object.values(errors).flatMap((E) => {
    if (typeof E !== 'function' || !(E.prototype instanceof Error)) return []
    const e = new (E as new () => { code: string, statusCode: number })()
    return /^(AUTH_H5_|WX_OAUTH_)/.test(e.code) ? [[e.code, e.statusCode] as const] : []
  })
  t.equal(h5Codes.length, 9)
  for (const [code, status] of h5Codes) t.equal(listed.get(code), status, `${code} (${status}) is in the document`)
})
