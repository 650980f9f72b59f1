// POST /auth/step-up with a real Redis and the WeChat simulator.
import { test } from 'tap'
import { bearer, buildApp, login, me, startRedis, startSim } from '../helper.js'

test('POST /auth/step-up: a fresh code of the same user steps the session up and renews its session_key', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  const alice = await login(app, 'stella.1')
  const other = await login(app, 'stella.2')
  const claims = (await me(app, alice.accessToken)).json()
  t.equal(claims.steppedUpAt, null)
  const before = Date.now()
  const res = await app.inject({ method: 'POST', url: '/auth/step-up', headers: bearer(alice.accessToken), payload: { code: 'stella.3' } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().expiresIn, 300, 'STEP_UP_TTL')
  t.ok(Math.abs(Date.parse(res.json().steppedUpAt) - before) < 5_000)
  t.equal((await me(app, alice.accessToken)).json().steppedUpAt, res.json().steppedUpAt, 'the same token shows it')
  t.equal((await me(app, other.accessToken)).json().steppedUpAt, null, 'the user\'s other session is not stepped up')
  const user = { ...(await me(app, alice.accessToken)).json(), aud: app.wechat.appid, sub: sim.openidOf('stella'), sid: claims.sessionId }
  t.equal(await app.wechatAuthSessions.sessionKeyOf(user as never), sim.sessionKeyOf('stella'), 'the session_key is the one WeChat issued with the fresh code')
  for (const secret of [sim.sessionKeyOf('stella') ?? 'none', alice.refreshToken]) t.notOk(res.body.includes(secret), 'no secret in the answer')
  const again = await app.inject({ method: 'POST', url: '/auth/step-up', headers: bearer(alice.accessToken), payload: { code: 'stella.3' } })
  t.equal(again.statusCode, 401)
  t.equal(again.json().code, 'WX_CODE_USED', 'a code steps up once')
})

test('POST /auth/step-up refuses another user\'s code, a missing token, a bad body and an ended session, each with its code', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  const victim = await login(app, 'vera.1')
  const step = async (headers: Record<string, string>, payload: unknown) => await app.inject({ method: 'POST', url: '/auth/step-up', headers, payload: payload as object })
  const mismatch = await step(bearer(victim.accessToken), { code: 'mallory.1' })
  t.equal(mismatch.statusCode, 403)
  t.equal(mismatch.json().code, 'AUTH_STEP_UP_MISMATCH')
  t.equal((await me(app, victim.accessToken)).json().steppedUpAt, null, 'nothing stepped up')
  const user = { aud: app.wechat.appid, sub: sim.openidOf('vera'), sid: (await me(app, victim.accessToken)).json().sessionId, openid: sim.openidOf('vera') }
  t.not(await app.wechatAuthSessions.sessionKeyOf(user as never), sim.sessionKeyOf('mallory'), 'the other user\'s session_key is not stored')
  t.equal((await step({}, { code: 'vera.2' })).json().code, 'AUTH_TOKEN_MISSING')
  t.equal((await step(bearer(victim.accessToken), { code: '' })).json().code, 'FST_ERR_VALIDATION')
  t.equal((await step(bearer(victim.accessToken), { code: 'vera.3', extra: 1 })).json().code, 'FST_ERR_VALIDATION')
  await app.wechatAuthSessions.kick({ appid: app.wechat.appid, sub: sim.openidOf('vera') }, { reason: 'support' })
  const kicked = await step(bearer(victim.accessToken), { code: 'vera.4' })
  t.equal(kicked.statusCode, 401)
  t.equal(kicked.json().code, 'AUTH_SESSION_KICKED')
})
