// Audit events through the gateway (plugins/sessions.ts, lib/audit.ts): one per thing that happens,
// a fixed shape, the request's client IP and id, the same as a log line and as an event a host
// subscribes to, and never a secret.
import { test } from 'tap'
import type { AuditEvent } from '../../lib/audit.js'
import { bearer, buildApp, login, me, refresh, startRedis, startSim } from '../helper.js'

const FIELDS = new Set(['event', 'outcome', 'appid', 'userId', 'sessionId', 'deviceType', 'via', 'reason', 'ip', 'requestId'])

test('audit events: logins, refreshes, reuse, step-up, logout, kick, ban, roles; a fixed shape, never a secret', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const logs: string[] = []
  const app = await buildApp(t, { sim, redisServer: redis, logs, config: { REFRESH_GRACE_SECONDS: 0, EXCLUSIVE_DEVICE_TYPES: 'pc', EXCLUSIVE_MODE: 'refuse' } })
  const events: AuditEvent[] = []
  app.wechatAuthEvents.on('audit', (e) => events.push(e))
  const user = { appid: app.wechat.appid, openid: sim.openidOf('audra') }

  const first = await login(app, 'audra.1')
  const used = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'audra.1' }, headers: { 'x-request-id': 'req-used-code' } })
  t.equal(used.json().code, 'WX_CODE_USED')
  await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'audra.2', deviceType: 'pc' } })
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'audra.3', deviceType: 'pc' } })).json().code, 'AUTH_DEVICE_IN_USE')
  const renewed = (await refresh(app, first.refreshToken)).json()
  // The new pair is used (GET /auth/me is not audited): the old token coming back is reuse.
  t.equal((await me(app, renewed.accessToken)).statusCode, 200)
  t.equal((await refresh(app, first.refreshToken)).json().code, 'AUTH_REFRESH_REUSED')
  const second = await login(app, 'audra.4')
  await app.inject({ method: 'POST', url: '/auth/step-up', headers: bearer(second.accessToken), payload: { code: 'audra.5' } })
  await app.inject({ method: 'POST', url: '/auth/step-up', headers: bearer(second.accessToken), payload: { code: 'mallory.1' } })
  await app.wechatAuthSessions.setAccess(user, { roles: ['vip'] })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(second.accessToken) })
  await app.wechatAuthSessions.kick(user, { reason: 'support' })
  await app.wechatAuthSessions.ban(user, { reason: 'abuse', service: 'pay' })
  await app.wechatAuthSessions.unban(user, { service: 'pay' })

  t.same(events.map((e) => `${e.event} ${e.outcome}`), [
    'session.open ok', 'login WX_CODE_USED', 'session.open ok', 'session.open AUTH_DEVICE_IN_USE', 'refresh ok', 'refresh.reuse AUTH_REFRESH_REUSED',
    'session.open ok', 'step-up ok', 'step-up AUTH_STEP_UP_MISMATCH', 'access.set ok', 'logout ok', 'kick ok', 'ban ok', 'unban ok'
  ], 'one event per thing that happened, in order')
  t.match(events[0], { event: 'session.open', appid: app.wechat.appid, userId: sim.openidOf('audra'), sessionId: /^[\w-]{12}$/, deviceType: 'mp', via: 'login', ip: '127.0.0.1', requestId: String })
  t.equal(events[1]?.requestId, 'req-used-code', 'the request\'s id')
  // Each route hands its flow the request (no AsyncLocalStorage): every HTTP event names it.
  for (const e of events.filter((e) => ['session.open', 'refresh', 'refresh.reuse', 'step-up', 'logout'].includes(e.event))) {
    t.match(e, { ip: '127.0.0.1', requestId: String }, `${e.event} ${e.outcome}: the request's IP and id`)
  }
  for (const e of events.filter((e) => ['access.set', 'kick', 'ban', 'unban'].includes(e.event))) t.notOk('requestId' in e, `${e.event}: the host's own call, no request`)
  t.match(events.find((e) => e.event === 'ban'), { reason: 'abuse, pay, for good' })
  for (const e of events) t.same(Object.keys(e).filter((k) => !FIELDS.has(k)), [], `${e.event}: the fixed shape`)
  const auditLines = logs.map((l) => JSON.parse(l) as { msg: string, audit?: AuditEvent }).filter((l) => l.msg === 'audit')
  t.same(auditLines.map((l) => l.audit), events, 'the same events, as log lines')
  const secrets = [first.accessToken, first.refreshToken, renewed.refreshToken, second.refreshToken, 'audra.1', 'audra.5', sim.sessionKeyOf('audra') ?? 'none']
  const text = JSON.stringify(events)
  for (const secret of secrets) t.notOk(text.includes(secret), 'no token, code or session_key in an event')
})

test('a refused login\'s audit event names only a mini program the gateway serves, never the client\'s appid', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const logs: string[] = []
  const app = await buildApp(t, { sim, redisServer: redis, logs })
  const events: AuditEvent[] = []
  app.wechatAuthEvents.on('audit', (e) => events.push(e))
  // A client that mixed its fields up: the login code in appid, and in code.
  // `k`, not a hex digit: a request id (a UUID) in an event could hold `c0de` by chance.
  const mixed = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'zoe.7', appid: 'zoe.k0de-in-the-appid' } })
  t.same([mixed.statusCode, mixed.json().code], [400, 'WX_APP_UNKNOWN'])
  const unknown = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'zoe.8', deviceType: 'tv' } })
  t.same([unknown.statusCode, unknown.json().code], [400, 'AUTH_DEVICE_TYPE_UNKNOWN'])
  t.same(events.map((e) => [e.event, e.outcome, e.appid]), [['login', 'WX_APP_UNKNOWN', undefined], ['login', 'AUTH_DEVICE_TYPE_UNKNOWN', app.wechat.appid]],
    'a refused appid is left out; the mini program of a login refused later is named')
  for (const e of events) t.notOk('appid' in e && e.appid !== app.wechat.appid, 'no appid but the configured one')
  t.notOk(JSON.stringify(events).includes('k0de') || logs.join('\n').includes('k0de-in-the-appid'), 'the code sent as an appid in no event and no log line')
})

test('a login whose session the store fails to open after WeChat took the code is audited and counted with the store\'s code', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  // Redis freezes between WeChat's answer and the session's creation (a host's resolveUser runs between them).
  let freeze = false
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    metrics: true,
    config: { STORE_TIMEOUT_MS: 200 },
    resolveUser: async (identity) => {
      if (freeze) redis.pause()
      return { userId: identity.openid }
    }
  })
  t.teardown(() => { redis.resume() })
  const events: AuditEvent[] = []
  app.wechatAuthEvents.on('audit', (e) => events.push(e))
  freeze = true
  const failed = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'stella.1' } })
  redis.resume()
  freeze = false
  t.same([failed.statusCode, failed.json().code], [503, 'STORE_UNAVAILABLE'])
  t.same(events.map((e) => [e.event, e.via, e.outcome]), [['session.open', 'login', 'STORE_UNAVAILABLE']], 'one event, with the code')
  const samples = await app.wechatAuthMetrics.registry.getSingleMetricAsString('wechat_auth_logins_total')
  t.match(samples, /wechat_auth_logins_total\{[^}]*outcome="STORE_UNAVAILABLE"[^}]*\} 1/, 'counted as a login that failed')
  t.notOk(JSON.stringify(events).includes('stella.1'), 'never the code')
})

test('an operator action that fails once its user is named is audited with its code, and not counted as done', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    metrics: true,
    config: { STORE_TIMEOUT_MS: 200 },
    resolveUser: async (identity) => ({ userId: `u-${identity.openid}` })
  })
  t.teardown(() => { redis.resume() })
  const events: AuditEvent[] = []
  app.wechatAuthEvents.on('audit', (e) => events.push(e))
  const sessions = app.wechatAuthSessions
  const appid = app.wechat.appid
  const pair = await login(app, 'opal.1')
  const user = { appid, openid: pair.openid }
  const codeOf = async (p: Promise<unknown>): Promise<string> => await p.then(() => 'ok', (e: { code?: string }) => String(e.code))
  events.length = 0

  // Refused before anything is tried (the caller's input): nothing to audit.
  t.equal(await codeOf(sessions.ban(user, { reason: 'has space' })), 'FST_ERR_VALIDATION')
  t.equal(await codeOf(sessions.kick({ appid: 'wx0000000000000bad', sub: 'x' })), 'WX_APP_UNKNOWN')
  t.same(events, [], 'no event for a malformed call')
  // An openid no one logged in as, under a resolveUser hook: the mini program, no user.
  t.equal(await codeOf(sessions.kick({ appid, openid: `${pair.openid}x` })), 'USER_NOT_FOUND')
  // A ninth service ban: the user it was for.
  for (let i = 1; i <= 8; i++) await sessions.ban(user, { reason: 'abuse', service: `s${i}` })
  events.length = 0
  t.equal(await codeOf(sessions.ban(user, { reason: 'abuse', service: 's9' })), 'SERVICE_BANS_FULL')
  // Redis frozen: each action times out.
  redis.pause()
  const frozen = [await codeOf(sessions.kick(user, { sid: 'AAAAAAAAAAAA' })), await codeOf(sessions.unban(user)), await codeOf(sessions.setAccess({ appid, sub: `u-${pair.openid}` }, { roles: ['vip'] }))]
  redis.resume()
  t.same(frozen, ['STORE_UNAVAILABLE', 'STORE_UNAVAILABLE', 'STORE_UNAVAILABLE'])
  t.same(events.map((e) => [e.event, e.outcome, e.appid, e.userId]), [
    ['ban', 'SERVICE_BANS_FULL', appid, `u-${pair.openid}`],
    // By openid, the store is asked for its user first: it timed out, so no user id is known.
    ['kick', 'STORE_UNAVAILABLE', appid, undefined],
    ['unban', 'STORE_UNAVAILABLE', appid, undefined],
    ['access.set', 'STORE_UNAVAILABLE', appid, `u-${pair.openid}`]
  ], 'one event per attempt that failed, with its code')
  t.same(events.map((e) => e.reason), ['abuse, s9, for good', 'kicked', 'account', 'roles vip; permissions -'], 'and what it asked')
  t.equal(events[1]?.sessionId, 'AAAAAAAAAAAA')
  const samples = await app.wechatAuthMetrics.registry.getSingleMetricAsString('wechat_auth_moderation_actions_total')
  t.match(samples, /action="ban"\} 8$/m, 'the eight bans done, not the one refused')
  t.notMatch(samples, /action="(kick|unban|access\.set)"\} [1-9]/, 'no failed action counted as done')
})

test('a host\'s audit subscriber that throws keeps the event from no other subscriber (the metrics\' included), and is warned of once a minute', async (t) => {
  const sim = await startSim(t)
  const logs: string[] = []
  const after: AuditEvent[] = []
  const app = await buildApp(t, {
    sim,
    logs,
    metrics: true,
    // Subscribed before the gateway is ready, so before the metrics' own subscription.
    extend: (host) => {
      host.wechatAuthEvents.on('audit', () => { throw new Error('the host\'s audit table is gone') })
      // An async one that rejects: its failure too, not an unhandled rejection (which would end the test's process).
      host.wechatAuthEvents.on('audit', (async () => { throw new Error('the host\'s async audit table is gone') }) as () => void)
      host.wechatAuthEvents.on('audit', (e) => after.push(e))
    }
  })
  for (const n of [1, 2, 3]) t.equal((await login(app, `theo.${n}`)).openid, sim.openidOf('theo'))
  t.equal(after.filter((e) => e.event === 'session.open').length, 3, 'a subscriber after it got every event')
  const samples = await app.wechatAuthMetrics.registry.getSingleMetricAsString('wechat_auth_logins_total')
  t.match(samples, /wechat_auth_logins_total\{[^}]*outcome="ok"[^}]*\} 3/, 'the metrics counted every login')
  const warned = logs.filter((l) => l.includes('an audit subscriber threw'))
  t.equal(warned.length, 1, 'one warning for three failures within a minute')
  t.match(warned[0], /the host's audit table is gone/)
})
