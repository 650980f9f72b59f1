// The login, refresh and logout flows on the memory store, with no Fastify. WeChat is a recording
// stand-in here: what these tests pin down is what reaches it and when (the HTTP side is tested
// against the simulator in test/routes).
import { test } from 'tap'
import { createAccessTokens } from '../../lib/access-tokens.js'
import { StoreUnavailableError, WxCodeUsedError, WxUnavailableError } from '../../lib/errors.js'
import { userTag } from '../../lib/ids.js'
import { parseRefreshToken } from '../../lib/refresh-tokens.js'
import { createSessions, type ResolveUser, type SessionsDeps } from '../../lib/sessions.js'
import { createMemoryStore } from '../../lib/store/memory.js'
import type { Code2SessionResult } from '../../lib/wechat-client.js'

const APPID = 'wx0123456789abcdef'
const SECRET = 'a-jwt-secret-that-is-long-enough-0123456789'
const config = { jwtSecret: SECRET, JWT_SECRET_PREVIOUS: undefined, REFRESH_TOKEN_TTL: 3600, SESSION_MAX_AGE: 7200, REFRESH_GRACE_SECONDS: 10 }

type Tap = { teardown: (fn: () => unknown) => void }

function setup (t: Tap, opts: { resolveUser?: ResolveUser, answer?: (code: string) => Promise<Code2SessionResult>, rules?: Partial<SessionsDeps['config']> } = {}) {
  let clock = 1_700_000_000_000
  const store = createMemoryStore({ now: () => clock })
  t.teardown(async () => await store.close())
  const calls: string[] = []
  const answer = opts.answer ?? (async (code: string) => ({ openid: `o-${code}`, unionid: `u-${code}`, sessionKey: `key-${code}` }))
  const wechat = {
    appids: [APPID],
    appOf: (appid?: string) => appid ?? APPID,
    code2Session: async (code: string) => { calls.push(code); return await answer(code) }
  }
  const tokens = createAccessTokens({ secret: SECRET, issuer: 'test', ttlSec: 900, appids: [APPID], store, now: () => clock })
  const warnings: string[] = []
  const sessions = createSessions({ store, wechat, tokens, config: { ...config, ...opts.rules }, resolveUser: opts.resolveUser, log: { warn: (_o, msg) => { warnings.push(msg ?? '') } } })
  return { store, sessions, tokens, calls, warnings, advance: (ms: number) => { clock += ms } }
}

test('login exchanges the code once and answers a token pair for the session it stores', async (t) => {
  const { store, sessions, tokens, calls } = setup(t)
  const pair = await sessions.login('alice')
  t.same(calls, ['alice'], 'WeChat was called once, with the code')
  t.match(pair, { tokenType: 'Bearer', expiresIn: 900, refreshExpiresIn: 3600, openid: 'o-alice', unionid: 'u-alice' })
  const claims = tokens.verify(pair.accessToken)
  t.match(claims, { sub: 'o-alice', openid: 'o-alice', unionid: 'u-alice', aud: APPID, iss: 'test' }, 'the openid is the user id by default')
  const parsed = parseRefreshToken(pair.refreshToken)
  t.same(parsed, { ref: { tag: userTag(APPID, 'o-alice'), sid: claims.sid }, generation: 0 }, 'the refresh token names the same session')
  const stored = await store.getSession({ tag: userTag(APPID, 'o-alice'), sid: claims.sid })
  t.equal(stored?.sessionKey, 'key-alice', 'the session_key is stored')
  t.notMatch(JSON.stringify(pair), /key-alice/, 'and never answered')
  t.equal(await sessions.sessionKeyOf(claims), 'key-alice')
})

test('a replayed code never reaches WeChat, nor does a concurrent duplicate', async (t) => {
  const { sessions, calls } = setup(t)
  await sessions.login('bob')
  await t.rejects(sessions.login('bob'), { code: 'WX_CODE_USED' })
  const both = await Promise.allSettled([sessions.login('carol'), sessions.login('carol')])
  t.same(both.map((r) => r.status).sort(), ['fulfilled', 'rejected'])
  t.match(both.find((r) => r.status === 'rejected'), { reason: { code: 'WX_CODE_USED' } })
  t.same(calls, ['bob', 'carol'], 'one WeChat call per code')
})

test('a transient WeChat failure releases the code; a code WeChat calls used stays used', async (t) => {
  let fail: Error | null = new WxUnavailableError()
  const { sessions, calls } = setup(t, {
    answer: async (code) => {
      const err = fail
      fail = null
      if (err !== null) throw err
      return { openid: `o-${code}`, sessionKey: 'k' }
    }
  })
  await t.rejects(sessions.login('dave'), { code: 'WX_UNAVAILABLE' })
  t.equal((await sessions.login('dave')).openid, 'o-dave', 'the same code works once WeChat is back')
  fail = new WxCodeUsedError()
  await t.rejects(sessions.login('erin'), { code: 'WX_CODE_USED' })
  await t.rejects(sessions.login('erin'), { code: 'WX_CODE_USED' })
  t.same(calls, ['dave', 'dave', 'erin'], 'the code WeChat refused as used is not sent again')
})

test('resolveUser picks the user id and adds claims; reserved claims and bad ids are refused', async (t) => {
  // A NUL, a line break, half a surrogate pair, nothing, more than 256 UTF-16 units (emoji count two).
  const badIds: Record<string, string> = { 'o-nul': 'a\u0000b', 'o-lf': 'a\nb', 'o-lone': 'a\ud800', 'o-empty': '', 'o-long': 'x'.repeat(257), 'o-emoji': '😀'.repeat(129) }
  const { sessions, tokens } = setup(t, {
    resolveUser: async ({ openid }) => openid === 'o-mallory'
      ? { userId: 'u1', claims: { sub: 'admin' } }
      : openid === 'o-proto'
        // An own __proto__ (as JSON.parse makes it) and a toJSON would change the payload or its JSON.
        ? { userId: 'u2', claims: { ...JSON.parse('{"__proto__":{"iss":"evil"}}') as Record<string, unknown>, toJSON: () => ({ iss: 'evil' }) } }
        : openid in badIds ? { userId: badIds[openid] as string } : openid === 'o-emoji-ok' ? { userId: '😀'.repeat(128) } : { userId: `user-${openid}`, claims: { role: 'member' } }
  })
  const pair = await sessions.login('frank')
  t.match(tokens.verify(pair.accessToken), { sub: 'user-o-frank', role: 'member' })
  const refreshed = await sessions.refresh(pair.refreshToken)
  t.match(tokens.verify(refreshed.accessToken), { sub: 'user-o-frank', role: 'member' }, 'claims survive a refresh')
  await t.rejects(sessions.login('mallory'), { message: /reserved claim\(s\): sub/ })
  await t.rejects(sessions.login('proto'), { message: /reserved claim\(s\): __proto__, toJSON/ })
  for (const openid of Object.keys(badIds)) await t.rejects(sessions.login(openid.slice(2)), { message: /userId/ }, openid)
  t.match(await sessions.login('emoji-ok'), { accessToken: String }, 'a user id of emoji within 256 UTF-16 units')
})

test('refresh rotates; the predecessor gets the same successor in the grace window and is reuse after it', async (t) => {
  const { sessions, tokens, advance, warnings } = setup(t)
  const first = await sessions.login('grace')
  advance(1000)
  const second = await sessions.refresh(first.refreshToken)
  t.not(second.refreshToken, first.refreshToken)
  t.equal(parseRefreshToken(second.refreshToken)?.generation, 1)
  t.equal(second.refreshExpiresIn, 3600)
  t.equal(tokens.verify(second.accessToken).sid, tokens.verify(first.accessToken).sid, 'same session')
  advance(9000)
  const retry = await sessions.refresh(first.refreshToken)
  t.equal(retry.refreshToken, second.refreshToken, 'a retry within the grace window gets the same successor')
  // The client has the new pair and uses it: past the window, the old token coming back is reuse.
  await tokens.authenticate(`Bearer ${second.accessToken}`)
  advance(1001)
  await t.rejects(sessions.refresh(first.refreshToken), { code: 'AUTH_REFRESH_REUSED' })
  t.same(warnings, ['refresh token reuse detected: session revoked'])
  await t.rejects(sessions.refresh(second.refreshToken), { code: 'AUTH_REFRESH_INVALID' }, 'reuse ended the session')
})

test('a refresh says its session\'s device type when asked, read alongside the rotation; a failed read fails it, the retry gets the same successor', async (t) => {
  const { store, sessions } = setup(t)
  const pair = await sessions.login('rita', undefined, { deviceType: 'web' })
  const plain = await sessions.refresh(pair.refreshToken)
  t.notOk('deviceType' in plain, 'not asked: not read')
  const typed = await sessions.refresh(plain.refreshToken, undefined, undefined, { deviceType: true })
  t.equal(typed.deviceType, 'web')
  const listSessions = store.listSessions
  store.listSessions = async () => { throw new StoreUnavailableError() }
  await t.rejects(sessions.refresh(typed.refreshToken, undefined, undefined, { deviceType: true }), { code: 'STORE_UNAVAILABLE' })
  store.listSessions = listSessions
  const retried = await sessions.refresh(typed.refreshToken, undefined, undefined, { deviceType: true })
  t.equal(retried.deviceType, 'web', 'the retry of the unanswered rotation')
  store.listSessions = async () => []
  await t.rejects(sessions.refresh(retried.refreshToken, undefined, undefined, { deviceType: true }), { code: 'AUTH_REFRESH_INVALID' }, 'a session gone since its rotation has no type to give')
})

test('an older token is reuse if ours, invalid if forged; junk is invalid', async (t) => {
  const { sessions } = setup(t)
  const t0 = (await sessions.login('old')).refreshToken
  const t1 = (await sessions.refresh(t0)).refreshToken
  const t2 = (await sessions.refresh(t1)).refreshToken
  const forged = t0.slice(0, -2) + (t0.endsWith('AA') ? 'BA' : 'AA')
  await t.rejects(sessions.refresh(forged), { code: 'AUTH_REFRESH_INVALID' }, 'a forged older token harms nothing')
  t.ok((await sessions.refresh(t2)).refreshToken, 'the session lives on after a forgery')
  await t.rejects(sessions.refresh(t0), { code: 'AUTH_REFRESH_REUSED' }, 'two generations behind, ours')
  await t.rejects(sessions.refresh('not-a-token'), { code: 'AUTH_REFRESH_INVALID' })
})

test('a session ends at SESSION_MAX_AGE however often it is refreshed, and its refresh and access lifetimes shrink to it', async (t) => {
  const { sessions, tokens, advance } = setup(t)
  let token = (await sessions.login('max')).refreshToken
  advance(3000 * 1000)
  const late = await sessions.refresh(token)
  t.equal(late.refreshExpiresIn, 3600)
  token = late.refreshToken
  advance(3000 * 1000)
  const last = await sessions.refresh(token)
  t.equal(last.refreshExpiresIn, 1200, 'capped by the absolute lifetime (7200 s from creation)')
  t.equal(last.expiresIn, 900, 'the access token\'s own lifetime: the session outlives it')
  advance(700 * 1000)
  const final = await sessions.refresh(last.refreshToken)
  t.same([final.refreshExpiresIn, final.expiresIn], [500, 500], 'the access token expires with the session, not 400 s after it')
  const claims = tokens.verify(final.accessToken)
  t.equal(claims.exp - claims.iat, 500)
  advance(499 * 1000)
  t.equal((await tokens.authenticate(`Bearer ${final.accessToken}`)).sid, claims.sid)
  advance(1000)
  await t.rejects(tokens.authenticate(`Bearer ${final.accessToken}`), { code: 'AUTH_TOKEN_EXPIRED' }, 'expired, not revoked')
  await t.rejects(sessions.refresh(final.refreshToken), { code: 'AUTH_REFRESH_INVALID' })
})

test('logout ends one session or all of the user, and their access tokens with them', async (t) => {
  const { sessions, tokens } = setup(t, { resolveUser: async () => ({ userId: 'same-user' }) })
  const a = await sessions.login('phone')
  const b = await sessions.login('tablet')
  const c = await sessions.login('laptop')
  const bearer = (p: { accessToken: string }): string => `Bearer ${p.accessToken}`
  t.equal(await sessions.logout(tokens.verify(a.accessToken), false), 1)
  await t.rejects(tokens.authenticate(bearer(a)), { code: 'AUTH_TOKEN_REVOKED' })
  await t.rejects(sessions.sessionKeyOf(tokens.verify(a.accessToken)), { code: 'AUTH_TOKEN_REVOKED' })
  t.equal((await tokens.authenticate(bearer(b))).sub, 'same-user', 'the other sessions live')
  t.equal(await sessions.logout(tokens.verify(b.accessToken), true), 2, 'all devices: the two left')
  await t.rejects(tokens.authenticate(bearer(c)), { code: 'AUTH_TOKEN_REVOKED' })
  await t.rejects(sessions.refresh(c.refreshToken), { code: 'AUTH_REFRESH_INVALID' })
})

test('a session of a mini program no longer served cannot be refreshed', async (t) => {
  const { store, sessions } = setup(t)
  const pair = await sessions.login('gone')
  const tokens = createAccessTokens({ secret: SECRET, issuer: 'test', ttlSec: 900, appids: ['wx1111111111111111'], store })
  const other = createSessions({
    store,
    wechat: { appids: ['wx1111111111111111'], appOf: () => 'wx1111111111111111', code2Session: async () => { throw new Error('not called') } },
    tokens,
    config,
    log: { warn: () => {} }
  })
  await t.rejects(other.refresh(pair.refreshToken), { code: 'AUTH_REFRESH_INVALID' })
  await t.rejects(sessions.refresh(pair.refreshToken), { code: 'AUTH_REFRESH_INVALID' }, 'and the session was ended')
})

test('resolveUser must be a function', async (t) => {
  const store = createMemoryStore()
  t.teardown(async () => await store.close())
  t.throws(() => createSessions({
    store,
    wechat: { appids: [APPID], appOf: () => APPID, code2Session: async () => ({ openid: 'o', sessionKey: 'k' }) },
    tokens: createAccessTokens({ secret: SECRET, issuer: 'test', ttlSec: 900, appids: [APPID], store }),
    config,
    resolveUser: 'nope' as unknown as ResolveUser,
    log: { warn: () => {} }
  }), { message: /resolveUser must be a function/ })
})

test('a login records its device; the user lists their sessions, the current one marked, and ends one of them', async (t) => {
  const { sessions, tokens } = setup(t, { resolveUser: async () => ({ userId: 'u-devices' }) })
  const phone = await sessions.login('phone', undefined, { deviceName: 'iPhone 15', ip: '203.0.113.7', userAgent: 'wechat' })
  const web = await sessions.login('web', undefined, { deviceType: 'web' })
  const me = tokens.verify(phone.accessToken)
  const list = await sessions.listSessions(me)
  t.same(list.map((s) => [s.deviceType, s.deviceName, s.ip, s.current]).sort(), [['mp', 'iPhone 15', '203.0.113.7', true], ['web', '', '', false]])
  const webSid = tokens.verify(web.accessToken).sid
  await t.rejects(sessions.endSession(me, 'AAAAAAAAAAAA'), { code: 'AUTH_SESSION_NOT_FOUND' })
  await sessions.endSession(me, webSid)
  await t.rejects(tokens.authenticate(`Bearer ${web.accessToken}`), { code: 'AUTH_TOKEN_REVOKED' }, 'ended by its user: the plain code')
  await t.rejects(sessions.endSession(me, webSid), { code: 'AUTH_SESSION_NOT_FOUND' }, 'already gone')
  await t.rejects(sessions.login('tv', undefined, { deviceType: 'tv' }), { code: 'AUTH_DEVICE_TYPE_UNKNOWN' })
})

test('a caller whose session ended after its token was checked is told so, not handed a list without it', async (t) => {
  const { sessions, tokens } = setup(t, { resolveUser: async () => ({ userId: 'u-raced' }) })
  const kept = await sessions.login('kept')
  const raced = tokens.verify((await sessions.login('raced')).accessToken)
  await sessions.endSession(tokens.verify(kept.accessToken), raced.sid)
  // The route checked the token before the session ended (the fuzz's concurrent mix found the window).
  await t.rejects(sessions.listSessions(raced), { code: 'AUTH_TOKEN_REVOKED' })
  t.equal((await sessions.listSessions(tokens.verify(kept.accessToken))).length, 1)
})

test('another user\'s session cannot be seen or ended', async (t) => {
  const { sessions, tokens } = setup(t)
  const alice = tokens.verify((await sessions.login('alice')).accessToken)
  const bob = tokens.verify((await sessions.login('bob')).accessToken)
  t.same((await sessions.listSessions(alice)).map((s) => s.sid), [alice.sid])
  await t.rejects(sessions.endSession(alice, bob.sid), { code: 'AUTH_SESSION_NOT_FOUND' })
  t.equal((await sessions.listSessions(bob)).length, 1, 'bob\'s session lives on')
})

test('an exclusive device type: the replaced session\'s tokens are told why; refuse mode answers AUTH_DEVICE_IN_USE', async (t) => {
  const same = setup(t, { resolveUser: async () => ({ userId: 'one-phone' }), rules: { EXCLUSIVE_DEVICE_TYPES: 'mp' } })
  const first = await same.sessions.login('p1')
  const second = await same.sessions.login('p2')
  const web = await same.sessions.login('w1', undefined, { deviceType: 'web' })
  const err = await same.tokens.authenticate(`Bearer ${first.accessToken}`).catch((e: unknown) => e)
  t.match(err, { code: 'AUTH_SESSION_REPLACED', statusCode: 401, detail: { deviceType: 'mp', cause: 'exclusive-device', endedAt: /^\d{4}-/ } })
  await t.rejects(same.sessions.refresh(first.refreshToken), { code: 'AUTH_SESSION_REPLACED' })
  t.ok(await same.tokens.authenticate(`Bearer ${second.accessToken}`))
  t.ok(await same.tokens.authenticate(`Bearer ${web.accessToken}`), 'web is not exclusive')
  const refuse = setup(t, { resolveUser: async () => ({ userId: 'no-second' }), rules: { EXCLUSIVE_DEVICE_TYPES: 'mp', EXCLUSIVE_MODE: 'refuse' } })
  await refuse.sessions.login('r1')
  await t.rejects(refuse.sessions.login('r2'), { code: 'AUTH_DEVICE_IN_USE', statusCode: 403, detail: { deviceType: 'mp' } })
})

test('the session limit ends the least recently refreshed session, told why', async (t) => {
  const { sessions, tokens, advance } = setup(t, { resolveUser: async () => ({ userId: 'busy' }), rules: { MAX_SESSIONS_PER_USER: 2 } })
  const a = await sessions.login('a')
  advance(10)
  const b = await sessions.login('b')
  advance(10)
  await sessions.refresh(a.refreshToken)
  advance(10)
  await sessions.login('c')
  await t.rejects(tokens.authenticate(`Bearer ${b.accessToken}`), { code: 'AUTH_SESSION_REPLACED', detail: { cause: 'session-limit' } })
  t.equal((await sessions.listSessions(tokens.verify(a.accessToken))).length, 2)
})

test('users named by openid: the user it logs in as now, never an older mapping', async (t) => {
  let linked = true
  // The host links the WeChat user to account acct-1, then unlinks it (the openid becomes its own user).
  const resolveUser: ResolveUser = async ({ openid }) => ({ userId: linked ? 'acct-1' : openid })
  const { sessions } = setup(t, { resolveUser, answer: async (code) => ({ openid: 'o-bob', sessionKey: `key-${code}` }) })
  await sessions.login('bob.1')
  t.equal((await sessions.userState({ appid: APPID, openid: 'o-bob' })).sub, 'acct-1')
  linked = false
  await sessions.login('bob.2')
  const now = await sessions.userState({ appid: APPID, openid: 'o-bob' })
  t.equal(now.sub, 'o-bob', 'the mapping follows the last login, the openid itself included')
  t.equal(now.sessions.length, 1)
  await t.rejects(sessions.userState({ appid: APPID, openid: 'o-never' }), { code: 'USER_NOT_FOUND', statusCode: 404 }, 'with a host resolveUser, an openid that never logged in is not guessed')
})

test('an operator action is audited once, even when the host\'s audit function throws on it', async (t) => {
  const { store } = setup(t)
  const events: string[] = []
  const tokens = createAccessTokens({ secret: SECRET, issuer: 'test', ttlSec: 900, appids: [APPID], store })
  const sessions = createSessions({
    store,
    wechat: { appids: [APPID], appOf: (appid?: string) => appid ?? APPID, code2Session: async (code: string) => ({ openid: `o-${code}`, sessionKey: `key-${code}` }) },
    tokens,
    config,
    log: { warn: () => {} },
    audit: (event) => {
      events.push(`${event.event} ${event.outcome}`)
      if (event.outcome === 'ok' && event.event !== 'session.open') throw new Error('the host\'s audit sink failed')
    }
  })
  await sessions.login('olga')
  await t.rejects(sessions.kick({ appid: APPID, sub: 'o-olga' }), { message: 'the host\'s audit sink failed' })
  t.same(events, ['session.open ok', 'kick ok'], 'done, audited once: not also as a failure with outcome error')
})
