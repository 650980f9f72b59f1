import { test } from 'tap'
import { digest, newJti, newRefreshToken, newSessionId, openSuccessor, parseRefreshToken, sealSuccessor, userTag } from '../../lib/tokens.js'

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

test('a sealed successor opens only with its predecessor', async (t) => {
  const sealed = sealSuccessor('token-1', 'token-2')
  t.equal(openSuccessor('token-1', sealed), 'token-2')
  t.equal(openSuccessor('token-x', sealed), null, 'wrong predecessor')
  t.equal(openSuccessor('token-1', sealed.slice(0, -2) + 'AA'), null, 'tampered')
  t.equal(openSuccessor('token-1', 'short'), null, 'truncated')
  t.notMatch(sealed, /token-2/, 'not in clear')
})
