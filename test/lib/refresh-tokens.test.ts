import { test } from 'tap'
import { digest, newJti, newNonce, newSessionId, randomId, userTag } from '../../lib/ids.js'
import { parseRefreshToken, refreshTokens } from '../../lib/refresh-tokens.js'

const SECRET = 'a-jwt-secret-that-is-long-enough-0123456789'
const tokens = refreshTokens(SECRET)

test('refresh tokens carry 256 random bits and a mac, name their session and start at generation 0', async (t) => {
  const ref = { tag: userTag('wxapp', 'alice'), sid: newSessionId() }
  const a = tokens.first(ref)
  const b = tokens.first(ref)
  t.not(a, b)
  const [, , generation, secret, mac] = a.split('.')
  t.equal(generation, '0')
  t.equal(Buffer.from(secret as string, 'base64url').length, 32, '32 bytes of randomness')
  t.equal(Buffer.from(mac as string, 'base64url').length, 16, 'a 128-bit mac')
  t.same(parseRefreshToken(a), { ref, generation: 0 })
  t.ok(tokens.issued(a))
})

test('parseRefreshToken refuses anything that is not of our shape', async (t) => {
  const good = tokens.first({ tag: userTag('a', 'b'), sid: newSessionId() })
  const [tag, sid, , secret, mac] = good.split('.')
  const withGeneration = (g: string): string => `${tag}.${sid}.${g}.${secret}.${mac}`
  t.same(parseRefreshToken(withGeneration('9999999999'))?.generation, 9_999_999_999, 'ten digits')
  for (const bad of ['', 'x', 'a.b.c', `${good}x`, `x${good}`, good.replace('.', ':'), `${good}\n`, newJti(),
    withGeneration('01'), withGeneration('-1'), withGeneration('1e3'), withGeneration(''), withGeneration('10000000000'),
    `${tag}.${sid}.${secret}.${mac}`, `${tag}.${sid}.0.${secret}`]) {
    t.equal(parseRefreshToken(bad), null, JSON.stringify(bad))
  }
})

test('issued: only a token sealed under this key, unaltered, passes', async (t) => {
  const token = tokens.first({ tag: userTag('a', 'b'), sid: newSessionId() })
  const [tag, sid, , secret, mac] = token.split('.') as [string, string, string, string, string]
  t.ok(tokens.issued(token))
  t.ok(tokens.issued(tokens.successor(token, newNonce())))
  t.notOk(refreshTokens('another-jwt-secret-that-is-long-enough-000').issued(token), 'another key')
  t.notOk(tokens.issued(`${tag}.${sid}.1.${secret}.${mac}`), 'another generation')
  t.notOk(tokens.issued(`${tag}.${sid}.0.${'A'.repeat(43)}.${mac}`), 'another secret')
  t.notOk(tokens.issued(`${tag}.${newSessionId()}.0.${secret}.${mac}`), 'another session')
  t.notOk(tokens.issued(`${tag}.${sid}.0.${secret}.${'A'.repeat(22)}`), 'a made-up mac')
  // The last base64url character of a 16-byte mac carries 2 bits: its siblings decode to the same bytes.
  const last = mac.slice(-1)
  const sibling = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('').find((c) => c !== last && Buffer.from(mac.slice(0, -1) + c, 'base64url').equals(Buffer.from(mac, 'base64url')))
  if (sibling !== undefined) t.notOk(tokens.issued(`${tag}.${sid}.0.${secret}.${mac.slice(0, -1)}${sibling}`), 'another spelling of the same mac')
  t.notOk(tokens.issued('garbage'))
})

test('digest and userTag are stable, short and distinct', async (t) => {
  t.equal(digest('x'), digest('x'))
  t.not(digest('x'), digest('y'))
  t.equal(digest('x').length, 22)
  t.equal(userTag('app', 'u'), userTag('app', 'u'))
  t.not(userTag('app1', 'u'), userTag('app2', 'u'), 'per mini program')
  t.not(userTag('ab', 'c'), userTag('a', 'bc'), 'no ambiguity between appid and sub')
})

test('with the previous secret, tokens issued under it are recognised and their successors derived', async (t) => {
  const ref = { tag: userTag('a', 'b'), sid: newSessionId() }
  const before = refreshTokens(SECRET)
  const after = refreshTokens('the-next-jwt-secret-which-is-long-enough-9876', SECRET)
  const old = before.first(ref)
  t.ok(after.issued(old), 'a token of the previous secret')
  t.ok(after.issued(after.first(ref)), 'and of the current one')
  t.equal(after.previousSuccessor(old, 'n'), before.successor(old, 'n'), 'the successor made before the change')
  t.not(after.successor(old, 'n'), before.successor(old, 'n'))
  t.equal(refreshTokens(SECRET).previousSuccessor(old, 'n'), undefined, 'none without a previous secret')
  t.notOk(refreshTokens('the-next-jwt-secret-which-is-long-enough-9876').issued(old))
})

test('a successor is the next generation, derived from the predecessor, the nonce and the key, and nothing less', async (t) => {
  const ref = { tag: userTag('a', 'b'), sid: newSessionId() }
  const token = tokens.first(ref)
  const next = tokens.successor(token, 'nonce-1')
  t.equal(tokens.successor(token, 'nonce-1'), next, 'deterministic: a retry gets the same successor')
  t.same(parseRefreshToken(next), { ref, generation: 1 }, 'same session, next generation')
  t.same(parseRefreshToken(tokens.successor(next, 'n'))?.generation, 2)
  t.equal(Buffer.from(next.split('.')[3] as string, 'base64url').length, 32, '256 bits')
  t.not(tokens.successor(token, 'nonce-2'), next, 'another nonce, another successor: the key and old tokens are not enough')
  t.not(refreshTokens('another-jwt-secret-that-is-long-enough-000').successor(token, 'nonce-1').split('.')[3], next.split('.')[3], 'another key, another successor')
  t.not(tokens.successor(tokens.first(ref), 'nonce-1'), next, 'another predecessor, another successor')
  t.throws(() => tokens.successor('garbage', 'n'))
  const [tag, sid, , secret, mac] = token.split('.')
  t.equal(parseRefreshToken(tokens.successor(`${tag}.${sid}.9999999999.${secret}.${mac}`, 'n')), null, 'the successor of the last generation does not parse: the session ends')
})

test('random ids come from a pool and do not repeat', async (t) => {
  const seen = new Set<string>()
  for (let i = 0; i < 2000; i++) seen.add(randomId(16))
  t.equal(seen.size, 2000, 'across several refills of the pool')
  t.equal(Buffer.from(randomId(32), 'base64url').length, 32)
})

test('digests are the first 128 bits of SHA-256, so stored ones stay valid across versions', async (t) => {
  t.equal(digest('abc'), 'ungWv48Bz-pBQUDeXa4iIw') // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223...
  t.equal(digest('ü'), /* UTF-8 */ Buffer.from('607474ca475a9724d7360aba71a56d5d', 'hex').toString('base64url'))
})

test('userTag is the digest of appid and sub, the same after its memo fills and is cleared', async (t) => {
  const first = userTag('wxapp', 'first-user')
  t.equal(first, digest('wxapp\u0000first-user').slice(0, 16))
  for (let i = 0; i < 10_001; i++) userTag('wxapp', `filler-${i}`)
  t.equal(userTag('wxapp', 'first-user'), first)
  t.equal(userTag('wxapp', 'filler-10000'), digest('wxapp\u0000filler-10000').slice(0, 16))
})
