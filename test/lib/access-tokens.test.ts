// Signing, verifying and authenticating the gateway's access tokens, on the memory store, with no Fastify.
import { createHmac, generateKeyPairSync } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import { test } from 'tap'
import { createAccessTokens } from '../../lib/access-tokens.js'
import { newSessionId, userTag } from '../../lib/ids.js'
import { MAX_CLAIMS_BYTES } from '../../lib/login.js'
import { createMemoryStore } from '../../lib/store/memory.js'

const APPID = 'wx0123456789abcdef'
const SECRET = 'a-jwt-secret-that-is-long-enough-0123456789'
type Tap = { teardown: (fn: () => unknown) => void }

async function setup (t: Tap, opts: { cacheSize?: number } = {}) {
  let clock = Date.now()
  const store = createMemoryStore({ now: () => clock })
  t.teardown(async () => await store.close())
  const tokens = createAccessTokens({ secret: SECRET, issuer: 'iss', ttlSec: 60, appids: [APPID], store, now: () => clock, ...opts })
  const ref = { tag: userTag(APPID, 'u1'), sid: newSessionId() }
  await store.createSession(ref, { sub: 'u1', openid: 'o1', sessionKey: 'k' }, 'digest', 3600)
  const issue = (claims?: Record<string, unknown>) => tokens.sign({ aud: APPID, sub: 'u1', openid: 'o1', sid: ref.sid, claims })
  return { store, tokens, ref, issue, advance: (ms: number) => { clock += ms } }
}

test('a signed token verifies to its claims, and authenticate checks the session', async (t) => {
  const { tokens, issue } = await setup(t)
  const { token, jti, expiresIn } = issue({ role: 'admin' })
  t.equal(expiresIn, 60)
  const claims = tokens.verify(token)
  t.match(claims, { sub: 'u1', openid: 'o1', aud: APPID, iss: 'iss', jti, role: 'admin' })
  t.equal(claims.exp - claims.iat, 60)
  const none = { roles: [], permissions: [], steppedUpAt: null, serviceBans: [] }
  t.same(await tokens.authenticate(`Bearer ${token}`), { ...claims, ...none }, 'the claims, and the user\'s access state from the store')
  t.same(await tokens.authenticate(`bearer   ${token}  `), { ...claims, ...none }, 'scheme in any case, spaces tolerated')
})

test('authenticate refuses with a stable code for each way a header or token is wrong', async (t) => {
  const { tokens, issue, store, ref } = await setup(t)
  const { token, jti } = issue()
  const other = createSigner({ key: SECRET, iss: 'iss', aud: 'wx1111111111111111' })({ sub: 'u1', openid: 'o1', sid: ref.sid, jti: 'j' })
  const wrongKey = createSigner({ key: `${SECRET}x`, iss: 'iss', aud: APPID })({ sub: 'u1', openid: 'o1', sid: ref.sid, jti: 'j' })
  const noSid = createSigner({ key: SECRET, iss: 'iss', aud: APPID })({ sub: 'u1', openid: 'o1', jti: 'j' })
  const numberSub = createSigner({ key: SECRET, iss: 'iss', aud: APPID })({ sub: 1, openid: 'o1', sid: ref.sid, jti: 'j' })
  const cases: Array<[string | undefined, string]> = [
    [undefined, 'AUTH_TOKEN_MISSING'],
    ['', 'AUTH_TOKEN_MISSING'],
    [`Basic ${token}`, 'AUTH_TOKEN_INVALID'],
    ['Bearer a.b', 'AUTH_TOKEN_INVALID'],
    [`Bearer ${other}`, 'AUTH_TOKEN_INVALID'],
    [`Bearer ${wrongKey}`, 'AUTH_TOKEN_INVALID'],
    [`Bearer ${noSid}`, 'AUTH_TOKEN_INVALID'],
    [`Bearer ${numberSub}`, 'AUTH_TOKEN_INVALID'],
    [`Bearer ${'a'.repeat(3000)}.${'b'.repeat(3000)}.c`, 'AUTH_TOKEN_INVALID']
  ]
  for (const [header, code] of cases) await t.rejects(tokens.authenticate(header), { code }, String(header).slice(0, 40))
  await store.blacklist(ref, jti, 60)
  await t.rejects(tokens.authenticate(`Bearer ${token}`), { code: 'AUTH_TOKEN_REVOKED' }, 'a blacklisted token')
  const fresh = issue().token
  await store.revokeSession(ref)
  await t.rejects(tokens.authenticate(`Bearer ${fresh}`), { code: 'AUTH_TOKEN_REVOKED' }, 'an ended session')
})

test('a remembered token expires on time, and nothing a caller changes reaches the next caller', async (t) => {
  const { tokens, issue, advance } = await setup(t)
  const { token } = issue({ nested: { role: 'member' } })
  const first = tokens.verify(token)
  first.sid = 'changed'
  t.throws(() => { (first.nested as { role: string }).role = 'admin' }, TypeError, 'nested claims are frozen')
  t.equal(tokens.verify(token).sid, (tokens.verify(token)).sid)
  t.not(tokens.verify(token).sid, 'changed')
  advance(59_000)
  t.ok(tokens.verify(token), 'still valid a second before exp')
  advance(1000)
  t.throws(() => tokens.verify(token), { code: 'AUTH_TOKEN_EXPIRED' }, 'expired by the clock, though remembered')
})

test('a remembered token\'s signature on other claims is refused, by header and alone', async (t) => {
  const { tokens, issue } = await setup(t)
  const { token } = issue()
  await tokens.authenticate(`Bearer ${token}`)
  const [header = '', , signature = ''] = token.split('.')
  const claims = { ...tokens.verify(token), sub: 'someone-else', openid: 'o2' }
  const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`
  await t.rejects(tokens.authenticate(`Bearer ${forged}`), { code: 'AUTH_TOKEN_INVALID' })
  t.throws(() => tokens.verify(forged), { code: 'AUTH_TOKEN_INVALID' })
  t.match(await tokens.authenticate(`Bearer ${token}`), { sub: 'u1' }, 'the genuine token still works')
})

test('the verify cache is bounded, and forgets an expired token', async (t) => {
  const { tokens, issue, advance } = await setup(t, { cacheSize: 2 })
  const [a, b, c] = [issue().token, issue().token, issue().token]
  for (const token of [a, b, c]) tokens.verify(token)
  t.equal(tokens.remembered(), 2, 'the oldest went first')
  t.ok(tokens.verify(a), 'an evicted token is verified again')
  t.throws(() => tokens.verify('x.y.z'), { code: 'AUTH_TOKEN_INVALID' })
  t.equal(tokens.remembered(), 2, 'failures are not remembered')
  advance(60_000)
  t.throws(() => tokens.verify(a), { code: 'AUTH_TOKEN_EXPIRED' })
  t.equal(tokens.remembered(), 1, 'an expired entry is dropped when seen')
})

test('a validly signed token this gateway could not have signed is invalid, never a 500', async (t) => {
  const { tokens, ref } = await setup(t)
  const nowSec = Math.floor(Date.now() / 1000)
  // Signed by hand: fast-jwt's signer refuses some of these claims itself.
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  const sign = (claims: Record<string, unknown>): string => {
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`
    return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`
  }
  const base = { sub: 'u1', openid: 'o1', sid: ref.sid, jti: 'j', iss: 'iss', aud: APPID, iat: nowSec, exp: nowSec + 60 }
  const cases: Array<[string, Record<string, unknown>]> = [
    ['exp 1e20', { exp: 1e20 }],
    ['exp a string', { exp: 'yesterday' }],
    ['exp a fraction', { exp: nowSec + 60.5 }],
    ['iat in the future', { iat: nowSec + 3600, exp: nowSec + 3660 }],
    ['exp centuries ahead', { exp: nowSec + 100 * 365 * 86400 }],
    ['exp before iat', { exp: nowSec - 1 }],
    ['unionid an object', { unionid: { a: 1 } }],
    ['sub a number', { sub: 7 }]
  ]
  for (const [label, change] of cases) {
    t.throws(() => tokens.verify(sign({ ...base, ...change })), { code: 'AUTH_TOKEN_INVALID' }, label)
  }
  t.match(tokens.verify(sign(base)), { sub: 'u1' }, 'the same token with plausible claims passes')
  t.throws(() => tokens.verify(sign({ ...base, iat: nowSec - 120, exp: nowSec - 60 })), { code: 'AUTH_TOKEN_EXPIRED' })
})

test('a token issued by a rotation names its generation (sgen), which its first use marks delivered; a host claim of that name never reaches a token', async (t) => {
  const { tokens, store, ref, issue } = await setup(t)
  t.notOk('sgen' in tokens.verify(issue().token), 'a login\'s token names no generation')
  t.notOk('sgen' in tokens.verify(issue({ sgen: 7, role: 'r' }).token), 'a host claim of that name is dropped')
  const rot = { presentedHash: 'digest', nextHash: 'd1', nonce: 'n1', graceMs: 0, ttlSec: 3600, maxAgeSec: 7200 }
  t.equal((await store.rotateRefresh(ref, { ...rot, generation: 0 })).status, 'rotated')
  const viaClaims = tokens.sign({ aud: APPID, sub: 'u1', openid: 'o1', sid: ref.sid, generation: 1, claims: { role: 'r', sgen: 9 } })
  t.match(tokens.verify(viaClaims.token), { sgen: 1, role: 'r' }, 'the generation given, never the host claim of that name')
  t.equal(tokens.verify(tokens.sign({ aud: APPID, sub: 'u1', openid: 'o1', sid: ref.sid, generation: 3 }).token).sgen, 3, 'given alone')
  t.match(await store.rotateRefresh(ref, { ...rot, generation: 0 }), { status: 'predecessor', delivered: false })
  await tokens.authenticate(`Bearer ${issue().token}`)
  t.match(await store.rotateRefresh(ref, { ...rot, generation: 0 }), { status: 'predecessor', delivered: false }, 'a login\'s token marks nothing')
  await tokens.authenticate(`Bearer ${viaClaims.token}`)
  t.match(await store.rotateRefresh(ref, { ...rot, generation: 0 }), { status: 'predecessor', delivered: true }, 'the rotation\'s token does')
  for (const sgen of [0, -1, 1.5, '1', null]) {
    const odd = createSigner({ key: SECRET, iss: 'iss', aud: APPID, expiresIn: 60_000 })({ sub: 'u1', openid: 'o1', sid: ref.sid, jti: `j${String(sgen)}`, sgen })
    t.throws(() => tokens.verify(odd), { code: 'AUTH_TOKEN_INVALID' }, `sgen ${JSON.stringify(sgen)} is not one the gateway signs`)
  }
})

test('the largest token the gateway can issue verifies: the longest sub, JWT_ISSUER and claims, ES256 with its kid, a refresh\'s generation', async (t) => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  // JSON escapes a quote: 256 of them are 512 characters in the token's payload.
  const issuer = '"'.repeat(256)
  const tokens = createAccessTokens({ secret: SECRET, issuer, ttlSec: 60, appids: [APPID], store: createMemoryStore(), signing: { algorithm: 'ES256', privateKey } })
  // 1,024 bytes of JSON, the most resolveUser may return: each of these is 6 bytes (\u0001) in JSON.
  const note = '\u0001'.repeat(Math.floor((MAX_CLAIMS_BYTES - '{"note":""}'.length) / 6))
  const claims = { note: note + 'x'.repeat(MAX_CLAIMS_BYTES - Buffer.byteLength(JSON.stringify({ note }))) }
  t.equal(Buffer.byteLength(JSON.stringify(claims)), MAX_CLAIMS_BYTES)
  const sub = '\u{1F600}'.repeat(256) // 4 bytes each in UTF-8
  const { token } = tokens.sign({ aud: APPID, sub, openid: 'o'.repeat(28), unionid: 'u'.repeat(28), sid: newSessionId(), generation: 9_999_999_999, claims })
  t.ok(token.length <= 4096, `${token.length} characters`)
  t.match(tokens.verify(token), { sub, iss: issuer, note: claims.note })
  t.throws(() => tokens.verify(`${token}${'A'.repeat(4097 - token.length)}`), { code: 'AUTH_TOKEN_INVALID' }, 'past 4,096 characters, refused')
})

test('sign(input, untilSec): a shorter lifetime in whole seconds; a longer one is the configured; not a positive number, FST_ERR_VALIDATION', async (t) => {
  const tokens = createAccessTokens({ secret: SECRET, issuer: 'iss', ttlSec: 60, appids: [APPID], store: createMemoryStore() })
  const input = { aud: APPID, sub: 'u1', openid: 'o1', sid: newSessionId() }
  t.equal(tokens.sign(input, 30.9).expiresIn, 30)
  t.equal(tokens.sign(input, 0.5).expiresIn, 1, 'at least a second')
  t.equal(tokens.sign(input, 600).expiresIn, 60)
  for (const bad of [0, -1, Number.NaN]) t.throws(() => tokens.sign(input, bad), { code: 'FST_ERR_VALIDATION', statusCode: 400 }, String(bad))
})
