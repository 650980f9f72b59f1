// H5 login's flow on the memory store, with no Fastify and a recording stand-in for the official
// account's calls: the returnTo rule, where the unionid comes from, and what is audited. The HTTP
// side, the real Redis and the simulator are test/routes/h5.test.ts's.
import { test } from 'tap'
import { createAccessTokens } from '../../lib/access-tokens.js'
import type { AuditEvent } from '../../lib/audit.js'
import { allowedReturnTo } from '../../lib/h5-login.js'
import { createSessions, type ResolveUser, type WeChatIdentity } from '../../lib/sessions.js'
import { createMemoryStore } from '../../lib/store/memory.js'
import type { OAuthGrant, OAuthUserInfo, WeChatOAuth } from '../../lib/wechat-oauth.js'

const APPID = 'wx0123456789abcdef'
const SECRET = 'a-jwt-secret-that-is-long-enough-0123456789'
const config = { jwtSecret: SECRET, JWT_SECRET_PREVIOUS: undefined, REFRESH_TOKEN_TTL: 3600, SESSION_MAX_AGE: 7200, REFRESH_GRACE_SECONDS: 10 }
const INFO: OAuthUserInfo = { nickname: 'Ann', headimgurl: '', sex: 0, province: '', city: '', country: '' }
type Tap = { teardown: (fn: () => unknown) => void }

function setup (t: Tap, opts: { grant?: Partial<OAuthGrant>, unionidInInfo?: string, returnUrls?: URL[], resolveUser?: ResolveUser, jwtSecret?: string } = {}) {
  const store = createMemoryStore()
  t.teardown(async () => await store.close())
  const calls: string[] = []
  const oauth: Pick<WeChatOAuth, 'appid' | 'authorizeUrl' | 'exchangeCode' | 'userInfo'> = {
    appid: 'wx00000000000000a0',
    authorizeUrl: (redirectUri, scope, state) => `https://wechat.example/authorize?${new URLSearchParams({ redirect_uri: redirectUri, scope, state }).toString()}`,
    exchangeCode: async (code) => { calls.push(`code ${code}`); return { openid: 'oa-ann', scopes: ['snsapi_userinfo'], accessToken: 'user-token', ...opts.grant } },
    userInfo: async () => { calls.push('userinfo'); return { info: INFO, ...(opts.unionidInInfo !== undefined ? { unionid: opts.unionidInInfo } : {}) } }
  }
  const wechat = { appids: [APPID], appOf: (appid?: string) => appid ?? APPID, code2Session: async () => { throw new Error('not here') } }
  const tokens = createAccessTokens({ secret: SECRET, issuer: 'test', ttlSec: 900, appids: [APPID], store })
  const events: AuditEvent[] = []
  const sessions = createSessions({
    store,
    wechat,
    tokens,
    config: { ...config, jwtSecret: opts.jwtSecret ?? SECRET },
    resolveUser: opts.resolveUser,
    log: { warn: () => {} },
    audit: (e) => { events.push(e) },
    h5: { oauth, returnUrls: opts.returnUrls ?? [new URL('https://h5.example.com/app/')] }
  })
  const h5 = sessions.h5
  if (h5 === undefined) throw new Error('H5 login is on with an official account')
  /** authorize, then the page's callback as WeChat would send it back. */
  const start = (scope: 'snsapi_base' | 'snsapi_userinfo' = 'snsapi_userinfo') => {
    const { url, browserSecret } = h5.authorize({ scope })
    return { state: new URL(url).searchParams.get('state') as string, browserSecret }
  }
  return { h5, calls, events, start, store }
}

test('returnTo: the origin of an entry and a path under it, parsed as a browser would', async (t) => {
  const allowed = [new URL('https://h5.example.com/app/'), new URL('https://m.example.com/login')]
  t.equal(allowedReturnTo('https://h5.example.com/app/', allowed), 'https://h5.example.com/app/')
  t.equal(allowedReturnTo('https://H5.EXAMPLE.com:443/app/x/../orders?id=1', allowed), 'https://h5.example.com/app/orders?id=1', 'normalised')
  t.equal(allowedReturnTo('https://m.example.com/login?next=%2F', allowed), 'https://m.example.com/login?next=%2F')
  for (const refused of [
    'https://m.example.com/login/more', 'https://h5.example.com/app', 'https://h5.example.com/apps/', 'https://h5.example.com/app/#x', 'http://h5.example.com/app/',
    'https://a:b@h5.example.com/app/', 'ftp://h5.example.com/app/', 'data:text/html,hi', 'not a url', 'https://h5.example.com/app/..%2f..%2fadmin',
    'https://h5.example.com/app/%5c..%5cadmin', 'https://h5.example.com/app/x%2E%2E/',
    // Encoded again, for a page server that decodes twice (or three times) before routing.
    'https://h5.example.com/app/%252e%252e/admin/', 'https://h5.example.com/app/%25252e%25252e/admin/', 'https://h5.example.com/app/%25%32%65%25%32%65/admin/',
    'https://h5.example.com/app/..%252fadmin', 'https://h5.example.com/app/..%255cadmin', 'https://h5.example.com/app/..%253b/admin'
  ]) t.equal(allowedReturnTo(refused, allowed), null, refused)
  t.equal(allowedReturnTo('https://h5.example.com/app/a%20b/%C3%A9', allowed), 'https://h5.example.com/app/a%20b/%C3%A9', 'other escapes pass')
  t.equal(allowedReturnTo('https://h5.example.com/app/', []), null, 'no entry, no page')
})

test('returnTo: a query naming code or state is refused, however spelled (WeChat appends its own: login CSRF)', async (t) => {
  const allowed = [new URL('https://h5.example.com/app/')]
  for (const refused of [
    'https://h5.example.com/app/?code=attacker', 'https://h5.example.com/app/?id=5&state=x', 'https://h5.example.com/app/?code', 'https://h5.example.com/app/?Code=x',
    'https://h5.example.com/app/?STATE=x', 'https://h5.example.com/app/?%63ode=x', 'https://h5.example.com/app/?id=5;code=x', 'https://h5.example.com/app/?code[]=x',
    'https://h5.example.com/app/?co%64e=x', 'https://h5.example.com/app/?%zz=1',
    // Inside a value or the path, for a page that finds its code with a regular expression over the address.
    'https://h5.example.com/app/?next=/app/?code=x', 'https://h5.example.com/app/?next=%2Fcode%3D1', 'https://h5.example.com/app/?x=%26code%3Dx',
    'https://h5.example.com/app/?x=%2526code%253Dx', 'https://h5.example.com/app/%3Fcode=x', 'https://h5.example.com/app/?barcode=1', 'https://h5.example.com/app/?s=state%3Dx'
  ]) t.equal(allowedReturnTo(refused, allowed), null, refused)
  t.equal(allowedReturnTo('https://h5.example.com/app/?states=2&id=5&from=menu', allowed), 'https://h5.example.com/app/?states=2&id=5&from=menu', 'other names pass')
  t.equal(allowedReturnTo('https://h5.example.com/app/code/page', allowed), 'https://h5.example.com/app/code/page', 'a path segment named code passes')
})

test('returnTo: a ; in the path is refused (a page server that drops path parameters before routing would leave the entry)', async (t) => {
  const allowed = [new URL('https://h5.example.com/app/')]
  for (const refused of ['https://h5.example.com/app/..;/admin', 'https://h5.example.com/app/x;jsessionid=1', 'https://h5.example.com/app/..%3b/admin', 'https://h5.example.com/app/..%3B/admin']) {
    t.equal(allowedReturnTo(refused, allowed), null, refused)
  }
})

test('the unionid comes from the code\'s answer, or else from userinfo; resolveUser is told where the user came from', async (t) => {
  const seen: WeChatIdentity[] = []
  const resolveUser: ResolveUser = async (identity) => { seen.push(identity); return { userId: `u:${identity.unionid ?? identity.openid}` } }
  const { h5, calls, start } = setup(t, { unionidInInfo: 'union-ann', resolveUser })
  const { state, browserSecret } = start()
  const pair = await h5.login({ code: 'c1', state }, browserSecret, { userAgent: 'UA' })
  t.match(pair, { openid: 'oa-ann', unionid: 'union-ann', deviceType: 'h5' })
  t.same(calls, ['code c1', 'userinfo'])
  t.same(seen, [{ openid: 'oa-ann', appid: APPID, source: 'h5', officialAccount: 'wx00000000000000a0', userInfo: INFO, unionid: 'union-ann' }])

  const base = setup(t, { grant: { unionid: 'union-code', scopes: ['snsapi_base'] }, unionidInInfo: 'ignored' })
  const s = base.start()
  t.match(await base.h5.login({ code: 'c2', state: s.state }, s.browserSecret, {}), { unionid: 'union-code' })
  t.same(base.calls, ['code c2'], 'WeChat granted snsapi_base only: no userinfo call')
})

test('refusals before a session is opened are audited as H5 logins; a state of another JWT secret is not ours', async (t) => {
  const { h5, events, start } = setup(t, { resolveUser: async () => { throw new Error('the host failed') } })
  const { state, browserSecret } = start('snsapi_base')
  await t.rejects(h5.login({ code: 'c1', state }, browserSecret, {}), /the host failed/)
  await t.rejects(h5.login({ state }, browserSecret, {}), { code: 'AUTH_H5_CODE_MISSING' })
  t.same(events.map((e) => [e.event, e.outcome, e.reason, e.appid]), [['login', 'error', 'h5', APPID], ['login', 'AUTH_H5_CODE_MISSING', 'h5', APPID]])
  const other = setup(t, { jwtSecret: 'another-jwt-secret-that-is-long-enough-012345' })
  await t.rejects(other.h5.login({ code: 'c1', state }, browserSecret, {}), { code: 'AUTH_H5_STATE_INVALID' })
  t.same(other.events.map((e) => [e.outcome, 'appid' in e]), [['AUTH_H5_STATE_INVALID', false]])
  const none = setup(t, { returnUrls: [] })
  t.throws(() => none.h5.authorize({}), { code: 'AUTH_H5_RETURN_TO_REFUSED' }, 'no page to return to')
})
