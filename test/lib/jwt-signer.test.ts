import { createSigner, createVerifier } from 'fast-jwt'
import { test } from 'tap'
import { createHs256Signer } from '../../lib/jwt-signer.js'

const SECRET = 'a-jwt-secret-of-32-characters-or-more-ü'
const NOW = 1_790_000_000_123

test('tokens are byte-identical to fast-jwt\'s (the library @fastify/jwt signs with)', async (t) => {
  const ours = createHs256Signer({ secret: SECRET, iss: 'wechat-auth', ttlSec: 900, now: () => NOW })
  const theirs = createSigner({ key: SECRET, algorithm: 'HS256', iss: 'wechat-auth', expiresIn: 900_000, clockTimestamp: NOW })
  const payloads = [
    {},
    { sub: 'o-1', openid: 'o-1', sid: 'abcdefghijkl', jti: 'j1', aud: 'wx0123456789abcdef' },
    { role: 'admin', nested: { list: [1, 'two', null], ключ: '值 "quoted" \u0001' }, sub: 'user 42', openid: 'o', unionid: 'u', sid: 's', jti: 'j', aud: 'wx' }
  ]
  for (const payload of payloads) t.equal(ours(payload), theirs({ ...payload }))
})

test('fast-jwt verifies them with iss, iat and exp set from the clock; iss/iat/exp in the payload lose', async (t) => {
  const sign = createHs256Signer({ secret: SECRET, iss: 'wechat-auth', ttlSec: 900, now: () => NOW })
  const token = sign({ sub: 'o-1', aud: 'wx1', iss: 'forged', iat: 1, exp: 9_999_999_999 })
  const [h, p, s] = token.split('.') as [string, string, string]
  t.equal(h, 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9', 'header {"alg":"HS256","typ":"JWT"}')
  const iat = Math.floor(NOW / 1000)
  const expected = { sub: 'o-1', aud: 'wx1', iss: 'wechat-auth', iat, exp: iat + 900 }
  t.same(JSON.parse(Buffer.from(p, 'base64url').toString()), expected, 'what is signed: the times of the signer\'s clock, not the payload\'s')
  // fast-jwt on the same clock (a second later) accepts it and reads the same claims.
  const verify = (at: number, key = SECRET) => createVerifier({ key, algorithms: ['HS256'], allowedIss: 'wechat-auth', allowedAud: 'wx1', clockTimestamp: at })
  t.same(verify(NOW + 1_000)(token), expected)
  t.throws(() => verify(NOW + 900_000)(token), { code: 'FAST_JWT_EXPIRED' }, 'expired ttlSec after the clock\'s now')
  t.throws(() => verify(NOW + 1_000, `${SECRET}x`)(token), { code: 'FAST_JWT_INVALID_SIGNATURE' }, 'another secret does not verify')
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...expected, sub: 'someone-else' })).toString('base64url')}.${s}`
  t.throws(() => verify(NOW + 1_000)(tampered), { code: 'FAST_JWT_INVALID_SIGNATURE' }, 'the signature covers the payload')
})
