import { createSigner } from 'fast-jwt'
import { test } from 'tap'
import { APPID, JWT_SECRET, buildApp, login, me, startRedis, startSim } from '../helper.js'

const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url')

test('fastify.authenticate distinguishes missing, invalid, expired and revoked tokens', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  const good = await login(app, 'alice')
  const claims = JSON.parse(Buffer.from(good.accessToken.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>
  const { iat: _iat, exp: _exp, iss: _iss, aud: _aud, ...payload } = claims
  const sign = (opts: Record<string, unknown>, key: string = JWT_SECRET, body: Record<string, unknown> = payload) =>
    createSigner({ key, algorithm: 'HS256', iss: 'fastify-wechat-auth', aud: APPID, expiresIn: 60_000, ...opts })(body)

  const cases: Array<[string, Record<string, string>, string]> = [
    ['no header', {}, 'AUTH_TOKEN_MISSING'],
    ['empty header', { authorization: '' }, 'AUTH_TOKEN_MISSING'],
    ['other scheme', { authorization: `Basic ${good.accessToken}` }, 'AUTH_TOKEN_INVALID'],
    ['bearer without token', { authorization: 'Bearer' }, 'AUTH_TOKEN_INVALID'],
    ['not a JWT', { authorization: 'Bearer abc' }, 'AUTH_TOKEN_INVALID'],
    ['too long', { authorization: `Bearer ${sign({}, JWT_SECRET, { ...payload, pad: 'x'.repeat(5000) })}` }, 'AUTH_TOKEN_INVALID'],
    ['tampered payload', { authorization: `Bearer ${good.accessToken.split('.')[0] as string}.${b64({ ...claims, sub: 'mallory' })}.${good.accessToken.split('.')[2] as string}` }, 'AUTH_TOKEN_INVALID'],
    ['alg none', { authorization: `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.` }, 'AUTH_TOKEN_INVALID'],
    ['other secret', { authorization: `Bearer ${sign({}, 'another-secret-that-is-long-enough-000000')}` }, 'AUTH_TOKEN_INVALID'],
    ['HS512', { authorization: `Bearer ${sign({ algorithm: 'HS512' })}` }, 'AUTH_TOKEN_INVALID'],
    ['wrong issuer', { authorization: `Bearer ${sign({ iss: 'someone-else' })}` }, 'AUTH_TOKEN_INVALID'],
    ['wrong audience', { authorization: `Bearer ${sign({ aud: 'wxffffffffffffffff' })}` }, 'AUTH_TOKEN_INVALID'],
    ['no iss', { authorization: `Bearer ${sign({ iss: undefined })}` }, 'AUTH_TOKEN_INVALID'],
    ['no aud', { authorization: `Bearer ${sign({ aud: undefined })}` }, 'AUTH_TOKEN_INVALID'],
    ['no sid', { authorization: `Bearer ${sign({}, JWT_SECRET, { ...payload, sid: undefined })}` }, 'AUTH_TOKEN_INVALID'],
    ['expired', { authorization: `Bearer ${sign({ clockTimestamp: Date.now() - 3_600_000 })}` }, 'AUTH_TOKEN_EXPIRED'],
    ['unknown session', { authorization: `Bearer ${sign({}, JWT_SECRET, { ...payload, sid: 'AAAAAAAAAAAAAAAA' })}` }, 'AUTH_TOKEN_REVOKED']
  ]
  for (const [name, headers, code] of cases) {
    const res = await app.inject({ method: 'GET', url: '/auth/me', headers })
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, code, name)
  }
  t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `bearer   ${good.accessToken}` } })).statusCode, 200, 'scheme is case-insensitive')
  t.equal((await me(app, sign({}))).statusCode, 200, 'a token signed with the right key and claims is accepted')
})

test('a token blacklisted by id is refused while its session lives', async (t) => {
  const sim = await startSim(t)
  const redis = await startRedis(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  const a = await login(app, 'bob.1')
  const claims = app.wechatAuthTokens.verify(a.accessToken)
  await app.wechatAuthStore.blacklist({ tag: (await import('../../lib/ids.js')).userTag(claims.aud, claims.sub), sid: claims.sid }, claims.jti, 60)
  t.equal((await me(app, a.accessToken)).json().code, 'AUTH_TOKEN_REVOKED')
  const next = (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: a.refreshToken } })).json()
  t.equal((await me(app, next.accessToken as string)).statusCode, 200, 'the session itself lives on')
})

test('revocation takes effect at once across two instances sharing one Redis', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const a = await buildApp(t, { sim, redisServer: redis })
  const b = await buildApp(t, { sim, redisServer: redis })
  const p = await login(a, 'carol.1')
  t.equal((await me(b, p.accessToken)).statusCode, 200, 'B accepts a token issued by A')
  const out = await b.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${p.accessToken}` } })
  t.equal(out.statusCode, 204)
  t.equal((await me(a, p.accessToken)).json().code, 'AUTH_TOKEN_REVOKED', 'A refuses it right after B logged it out')
  const q = await login(b, 'carol.2')
  const rotated = await a.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: q.refreshToken } })
  t.equal(rotated.statusCode, 200, 'A rotates a refresh token issued by B')
  const reuse = await b.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: q.refreshToken } })
  t.equal(reuse.statusCode, 200, 'B sees the grace window of A\'s rotation')
  t.equal(reuse.json().refreshToken, rotated.json().refreshToken)
})

test('a handler that writes to request.wechatAuthUser changes nothing for the next request', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  let bSid = ''
  // A careless host route: it rewrites the claims of the request it serves.
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    extend: (host) => host.register(async (scope) => {
      scope.addHook('onRequest', scope.authenticate)
      scope.get('/scribble', async (request) => {
        const seen = { sid: request.wechatAuthUser.sid, role: request.wechatAuthUser.role ?? null }
        request.wechatAuthUser.sid = bSid
        request.wechatAuthUser.role = 'admin'
        return seen
      })
    })
  })
  const a = await login(app, 'dave.1')
  const b = await login(app, 'dave.2')
  bSid = app.wechatAuthTokens.verify(b.accessToken).sid
  const first = await app.inject({ method: 'GET', url: '/scribble', headers: { authorization: `Bearer ${a.accessToken}` } })
  const second = await app.inject({ method: 'GET', url: '/scribble', headers: { authorization: `Bearer ${a.accessToken}` } })
  t.equal(first.statusCode, 200)
  t.same(second.json(), first.json(), 'the second request sees the token\'s own claims')
  t.not(first.json().sid, bSid)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${a.accessToken}` } })
  t.equal((await me(app, a.accessToken)).json().code, 'AUTH_TOKEN_REVOKED', 'and revocation still applies to it')
  t.equal((await me(app, b.accessToken)).statusCode, 200)
})
