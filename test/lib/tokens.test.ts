import { test } from 'tap'
import { digest, newJti, newRefreshToken, newSessionId, parseRefreshToken, randomId, successorKey, successorOf, userTag } from '../../lib/tokens.js'

test('refresh tokens carry 256 random bits and name their session', async (t) => {
  const ref = { tag: userTag('wxapp', 'alice'), sid: newSessionId() }
  const a = newRefreshToken(ref)
  const b = newRefreshToken(ref)
  t.not(a, b)
  const secret = a.split('.')[2] as string
  t.equal(Buffer.from(secret, 'base64url').length, 32, '32 bytes of randomness')
  t.same(parseRefreshToken(a), ref)
})

test('parseRefreshToken refuses anything that is not one of ours', async (t) => {
  const good = newRefreshToken({ tag: userTag('a', 'b'), sid: newSessionId() })
  for (const bad of ['', 'x', 'a.b.c', `${good}x`, `x${good}`, good.replace('.', ':'), `${good}\n`, newJti()]) {
    t.equal(parseRefreshToken(bad), null, JSON.stringify(bad))
  }
})

test('digest and userTag are stable, short and distinct', async (t) => {
  t.equal(digest('x'), digest('x'))
  t.not(digest('x'), digest('y'))
  t.equal(digest('x').length, 22)
  t.equal(userTag('app', 'u'), userTag('app', 'u'))
  t.not(userTag('app1', 'u'), userTag('app2', 'u'), 'per mini program')
  t.not(userTag('ab', 'c'), userTag('a', 'bc'), 'no ambiguity between appid and sub')
})

test('a successor is derived from the predecessor, the nonce and the key, and nothing less', async (t) => {
  const ref = { tag: userTag('a', 'b'), sid: newSessionId() }
  const token = newRefreshToken(ref)
  const key = successorKey('a-jwt-secret-that-is-long-enough-0123456789')
  const next = successorOf(key, token, 'nonce-1')
  t.equal(successorOf(key, token, 'nonce-1'), next, 'deterministic: a retry gets the same successor')
  t.same(parseRefreshToken(next), ref, 'same session')
  t.equal(Buffer.from(next.split('.')[2] as string, 'base64url').length, 32, '256 bits')
  t.not(successorOf(key, token, 'nonce-2'), next, 'another nonce, another successor')
  t.not(successorOf(successorKey('another-jwt-secret-that-is-long-enough-000'), token, 'nonce-1'), next, 'another key, another successor')
  t.not(successorOf(key, newRefreshToken(ref), 'nonce-1'), next, 'another predecessor, another successor')
  t.throws(() => successorOf(key, 'garbage', 'n'))
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
