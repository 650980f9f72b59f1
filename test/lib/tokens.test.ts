import { test } from 'tap'
import { digest, newJti, newRefreshToken, newSessionId, parseRefreshToken, randomId, successorKey, successorOf, userTag } from '../../lib/tokens.js'

test('refresh tokens carry 256 random bits, name their session and start at generation 0', async (t) => {
  const ref = { tag: userTag('wxapp', 'alice'), sid: newSessionId() }
  const a = newRefreshToken(ref)
  const b = newRefreshToken(ref)
  t.not(a, b)
  const secret = a.split('.')[3] as string
  t.equal(Buffer.from(secret, 'base64url').length, 32, '32 bytes of randomness')
  t.same(parseRefreshToken(a), { ref, generation: 0 })
})

test('parseRefreshToken refuses anything that is not one of ours', async (t) => {
  const good = newRefreshToken({ tag: userTag('a', 'b'), sid: newSessionId() })
  const [tag, sid, , secret] = good.split('.')
  const withGeneration = (g: string): string => `${tag}.${sid}.${g}.${secret}`
  t.same(parseRefreshToken(withGeneration('9999999999'))?.generation, 9_999_999_999, 'ten digits')
  for (const bad of ['', 'x', 'a.b.c', `${good}x`, `x${good}`, good.replace('.', ':'), `${good}\n`, newJti(),
    withGeneration('01'), withGeneration('-1'), withGeneration('1e3'), withGeneration(''), withGeneration('10000000000'),
    `${tag}.${sid}.${secret}`]) {
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

test('a successor is the next generation, derived from the predecessor and the key, and nothing less', async (t) => {
  const ref = { tag: userTag('a', 'b'), sid: newSessionId() }
  const token = newRefreshToken(ref)
  const key = successorKey('a-jwt-secret-that-is-long-enough-0123456789')
  const next = successorOf(key, token)
  t.equal(successorOf(key, token), next, 'deterministic: a retry gets the same successor')
  t.same(parseRefreshToken(next), { ref, generation: 1 }, 'same session, next generation')
  t.same(parseRefreshToken(successorOf(key, next))?.generation, 2)
  t.equal(Buffer.from(next.split('.')[3] as string, 'base64url').length, 32, '256 bits')
  t.not(successorOf(successorKey('another-jwt-secret-that-is-long-enough-000'), token), next, 'another key, another successor')
  t.not(successorOf(key, newRefreshToken(ref)), next, 'another predecessor, another successor')
  const [tag, sid, , secret] = token.split('.')
  t.not(successorOf(key, `${tag}.${sid}.5.${secret}`).split('.')[3], next.split('.')[3], 'the generation is part of what is derived')
  t.throws(() => successorOf(key, 'garbage'))
  const last = `${tag}.${sid}.9999999999.${secret}`
  t.equal(parseRefreshToken(successorOf(key, last)), null, 'the successor of the last generation does not parse: the session ends')
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
