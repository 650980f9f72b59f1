// Secrets never reach a log line: session_key, the app secret, the JWT secret, login codes,
// refresh tokens and access tokens, across success and failure paths, at the most verbose level.
import { test } from 'tap'
import { JWT_SECRET, SECRET, bearer, buildApp, login, refresh, startRedis, startSim, type Pair } from './helper.js'

test('no secret appears in any log line', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t, { slowMs: 2000 })
  const logs: string[] = []
  const app = await buildApp(t, { sim, redisServer: redis, logs, config: { WECHAT_TIMEOUT_MS: 300 } })

  const codes = ['alice.c0de1', 'busy.c0de2', 'invalid.c0de3', 'risky.c0de4', 'garbage.c0de5', 'slow.c0de6', 'limit.c0de7']
  const pairs: Pair[] = []
  for (const code of codes) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code } })
    if (res.statusCode === 200) pairs.push(res.json<Pair>())
  }
  await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'alice.c0de1' } }) // replay
  const p = pairs[0] as Pair
  const rotated = (await refresh(app, p.refreshToken)).json<Pair>()
  await refresh(app, p.refreshToken) // grace
  const second = await login(app, 'alice.c0de8')
  const next = (await refresh(app, second.refreshToken)).json<Pair>()
  await refresh(app, (await refresh(app, next.refreshToken)).json<Pair>().refreshToken)
  await refresh(app, second.refreshToken) // reuse -> revoked, logged
  await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(rotated.accessToken) })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(rotated.accessToken) })
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: `${p.refreshToken}x` } })
  await redis.stop()
  await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'alice.c0de9' } })
  await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(second.accessToken) })

  const text = logs.join('\n')
  t.ok(logs.length > 40, `captured ${logs.length} lines`)
  t.match(text, /refresh token reuse detected/, 'the reuse warning was logged')
  t.match(text, /WeChat answered with an error/, 'WeChat errors were logged')
  t.match(text, /STORE_UNAVAILABLE/, 'the outage was logged')
  const secrets: Array<[string, string]> = [
    ['app secret', SECRET],
    ['JWT secret', JWT_SECRET],
    ...['alice', 'busy'].map((u): [string, string] => [`session_key of ${u}`, sim.sessionKeyOf(u) as string]),
    ...codes.map((c): [string, string] => ['login code', c]),
    ['login code', 'alice.c0de8'],
    ['login code', 'alice.c0de9'],
    ...[p, rotated, second, next].flatMap((x): Array<[string, string]> => [
      ['refresh token', x.refreshToken],
      ['access token signature', x.accessToken.split('.')[2] as string]
    ])
  ]
  for (const [what, value] of secrets) {
    t.notOk(text.includes(value), `no ${what} in the logs`)
  }
  t.notOk(/c0de\d/.test(text), 'no fragment of any login code')
})
