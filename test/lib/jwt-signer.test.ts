import { createSigner, createVerifier } from 'fast-jwt'
import { test } from 'tap'
import { createHs256Signer } from '../../lib/jwt-signer.js'

const SECRET = 'a-jwt-secret-of-32-characters-or-more-ü'
const NOW = 1_790_000_000_123

test('tokens are byte-identical to fast-jwt\'s (the library @fastify/jwt signs with)', async (t) => {
  const ours = createHs256Signer({ secret: SECRET, iss: 'wechat-auth', ttlSec: 900, now: () => NOW })
  const theirs = createSigner({ key: SECRET, algorithm: 'HS256', iss: 'wechat-auth', expiresIn: 900_000, clockTimestamp: NOW })
  const payloads = [
    { sub: 'o-1', openid: 'o-1', sid: 'abcdefghijkl', jti: 'j1', aud: 'wx0123456789abcdef' },
    { role: 'admin', nested: { list: [1, 'two', null], ключ: '值 "quoted" \u0001' }, sub: 'user 42', openid: 'o', unionid: 'u', sid: 's', jti: 'j', aud: 'wx' }
  ]
  for (const payload of payloads) t.equal(ours(payload), theirs({ ...payload }))
})

test('fast-jwt verifies them with iss, iat and exp set from the clock; iss/iat/exp in the payload lose', async (t) => {
  const sign = createHs256Signer({ secret: SECRET, iss: 'wechat-auth', ttlSec: 900 })
  const before = Math.floor(Date.now() / 1000)
  const token = sign({ sub: 'o-1', aud: 'wx1', iss: 'forged', iat: 1, exp: 9_999_999_999 })
  t.match(token.split('.')[0], 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9', 'header {"alg":"HS256","typ":"JWT"}')
  const claims = createVerifier({ key: SECRET, algorithms: ['HS256'], allowedIss: 'wechat-auth', allowedAud: 'wx1' })(token) as { iss: string, iat: number, exp: number }
  t.equal(claims.iss, 'wechat-auth')
  t.ok(claims.iat >= before && claims.iat <= before + 2)
  t.equal(claims.exp, claims.iat + 900)
  t.throws(() => createVerifier({ key: `${SECRET}x`, algorithms: ['HS256'] })(token), { code: 'FAST_JWT_INVALID_SIGNATURE' }, 'another secret does not verify')
  const [h, p, s] = token.split('.') as [string, string, string]
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${s}`
  t.throws(() => createVerifier({ key: SECRET, algorithms: ['HS256'] })(tampered), { code: 'FAST_JWT_INVALID_SIGNATURE' })
  t.ok(p.length > 0)
})
