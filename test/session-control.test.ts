// Session control across gateway instances sharing one Redis: exclusive device types and the session
// limit hold under concurrent logins, because each is decided in the script that creates the session.
import type { FastifyInstance } from 'fastify'
import { test } from 'tap'
import { buildApp, login, me, refresh, startRedis, startSim, type Pair } from './helper.js'

async function twoInstances (t: { teardown: (fn: () => unknown) => void }, config: Record<string, unknown>): Promise<FastifyInstance[]> {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  return await Promise.all([0, 1].map(async () => await buildApp(t, { sim, redisServer: redis, config })))
}

/** Each pair's access and refresh token answers, as [access status, access code, refresh status, refresh code]. */
async function outcomes (apps: FastifyInstance[], pairs: Pair[]): Promise<Array<[number, string | undefined, number, string | undefined]>> {
  return await Promise.all(pairs.map(async (p, i) => {
    const app = apps[i % apps.length] as FastifyInstance
    const access = await me(app, p.accessToken)
    const renewed = await refresh(app, p.refreshToken)
    return [access.statusCode, access.json().code, renewed.statusCode, renewed.json().code]
  }))
}

test('20 concurrent logins of one user on an exclusive device type, on 2 instances: one session survives, the rest are told why', async (t) => {
  const apps = await twoInstances(t, { EXCLUSIVE_DEVICE_TYPES: 'mp' })
  const pairs = await Promise.all(Array.from({ length: 20 }, async (_, i) => await login(apps[i % 2] as FastifyInstance, `racer.${i}`)))
  const results = await outcomes(apps, pairs)
  const alive = results.filter(([status]) => status === 200)
  t.equal(alive.length, 1, 'exactly one session of the type is alive')
  t.same(alive[0]?.slice(2), [200, undefined], 'and its refresh token works')
  const replaced = results.filter(([status]) => status !== 200)
  t.equal(replaced.length, 19)
  t.same([...new Set(replaced.map((r) => r.join(' ')))], ['401 AUTH_SESSION_REPLACED 401 AUTH_SESSION_REPLACED'], 'every other access and refresh token is told why')
})

test('20 concurrent logins of one user with a session limit of 3, on 2 instances: never more than 3 alive', async (t) => {
  const apps = await twoInstances(t, { MAX_SESSIONS_PER_USER: 3 })
  const pairs = await Promise.all(Array.from({ length: 20 }, async (_, i) => await login(apps[i % 2] as FastifyInstance, `crowd.${i}`)))
  const results = await outcomes(apps, pairs)
  t.equal(results.filter(([status]) => status === 200).length, 3, 'exactly the limit')
  t.same([...new Set(results.filter(([status]) => status !== 200).map((r) => r.join(' ')))], ['401 AUTH_SESSION_REPLACED 401 AUTH_SESSION_REPLACED'])
})

test('a ban during a storm of refreshes and requests on 2 instances: once it returns, nothing of that user succeeds; unban restores login', async (t) => {
  const apps = await twoInstances(t, {})
  const [a, b] = apps as [FastifyInstance, FastifyInstance]
  // 10 sessions of the user, refreshed in chains and used, half on each instance.
  const pairs = await Promise.all(Array.from({ length: 10 }, async (_, i) => await login(apps[i % 2] as FastifyInstance, `storm.${i}`)))
  const bystander = await login(a, 'calm.1')
  const user = { appid: a.wechat.appid, sub: (await me(a, pairs[0]?.accessToken as string)).json().openid as string }
  // 20 workers in sequence, 10 refreshing (chains) and 10 using access tokens, 10 requests each:
  // 100 refreshes and 100 authenticated requests; the ban is issued once 60 of them are done.
  let banReturned = 0
  let done = 0
  let banStarted: Promise<void> | undefined
  const afterBan: string[] = []
  let successesBefore = 0
  const worker = async (w: number): Promise<void> => {
    const app = apps[w % 2] as FastifyInstance
    const p = pairs[w % 10] as Pair
    for (let n = 0; n < 10; n++) {
      const started = Date.now()
      const res = w < 10 ? await refresh(app, p.refreshToken) : await me(app, p.accessToken)
      if (res.statusCode === 200) {
        if (w < 10) p.refreshToken = res.json().refreshToken
        if (banReturned > 0 && started > banReturned) afterBan.push(`worker ${w}: 200 after the ban`)
        else successesBefore++
      }
      if (++done === 60) {
        banStarted = (async () => {
          await b.wechatAuthSessions.ban(user, { reason: 'abuse-42' })
          banReturned = Date.now()
        })()
      }
    }
  }
  await Promise.all(Array.from({ length: 20 }, async (_, w) => { await worker(w) }))
  await banStarted
  t.ok(successesBefore > 0 && banReturned > 0, `the storm ran (${successesBefore} successes before the ban) and the ban returned during it`)
  t.ok(done === 200, '100 refreshes and 100 authenticated requests')
  t.same(afterBan, [], 'no request started after the ban returned succeeded')
  for (const [i, p] of pairs.entries()) {
    const app = apps[i % 2] as FastifyInstance
    const access = await me(app, p.accessToken)
    t.equal(access.statusCode, 403)
    t.match(access.json(), { code: 'AUTH_ACCOUNT_BANNED', detail: { reason: 'abuse-42' } })
    t.equal((await refresh(app, p.refreshToken)).json().code, 'AUTH_ACCOUNT_BANNED', 'no new token')
  }
  const login403 = await a.inject({ method: 'POST', url: '/auth/login', payload: { code: 'storm.99' } })
  t.equal(login403.statusCode, 403)
  t.equal(login403.json().code, 'AUTH_ACCOUNT_BANNED')
  t.equal((await me(a, bystander.accessToken)).statusCode, 200, 'another user is untouched')
  await a.wechatAuthSessions.unban(user)
  t.equal((await b.inject({ method: 'POST', url: '/auth/login', payload: { code: 'storm.100' } })).statusCode, 200, 'unban restores login')
  const old = await me(b, pairs[1]?.accessToken as string)
  t.match(old.json(), { code: 'AUTH_SESSION_KICKED', detail: { reason: 'abuse-42' } }, 'sessions the ban ended stay ended')
})

// ACCESS_CHECK=strict: the other instance's very next request sees the change. Tracked (the default)
// sees it within the invalidation's trip: test/access-cache.test.ts.
test('kick through the host API: one session or all, each told the reason', async (t) => {
  const [a, b] = await twoInstances(t, { ACCESS_CHECK: 'strict' }) as [FastifyInstance, FastifyInstance]
  const one = await login(a, 'kim.1')
  const two = await login(b, 'kim.2')
  const who = (await me(a, one.accessToken)).json()
  const user = { appid: a.wechat.appid, sub: who.openid as string }
  t.equal(await b.wechatAuthSessions.kick(user, { sid: who.sessionId, reason: 'lost-phone' }), 1)
  t.match((await me(a, one.accessToken)).json(), { statusCode: 401, code: 'AUTH_SESSION_KICKED', detail: { reason: 'lost-phone' } })
  t.equal((await me(b, two.accessToken)).statusCode, 200)
  t.equal(await a.wechatAuthSessions.kick(user), 1)
  t.equal((await refresh(b, two.refreshToken)).json().code, 'AUTH_SESSION_KICKED')
  const free = await a.wechatAuthSessions.kick(user, { reason: 'has spaces' }).catch((e: unknown) => e)
  t.ok(free instanceof TypeError, 'a reason code, not free text: a TypeError')
  t.match(free, { code: 'FST_ERR_VALIDATION', statusCode: 400 }, 'answered 400 by a route that passes it on')
  // A session id as the gateway makes them: the Redis script reads '*' as every session.
  const three = await login(a, 'kim.3')
  const four = await login(b, 'kim.4')
  for (const sid of ['*', '', 42, {}]) {
    t.match(await a.wechatAuthSessions.kick(user, { sid: sid as string }).catch((e: unknown) => e), { code: 'FST_ERR_VALIDATION', statusCode: 400 }, `sid ${JSON.stringify(sid)}`)
  }
  t.same([(await me(a, three.accessToken)).statusCode, (await me(b, four.accessToken)).statusCode], [200, 200], 'no session ended')
})

test('strict: a permission change applied on instance A is enforced by instance B on its next request', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const routes = (app: FastifyInstance): void => {
    app.get('/refunds', { onRequest: app.authorize({ permissions: ['order:refund'] }) }, async () => ({ ok: true }))
  }
  const [a, b] = await Promise.all([0, 1].map(async () => await buildApp(t, { sim, redisServer: redis, extend: routes, config: { ACCESS_CHECK: 'strict' } }))) as [FastifyInstance, FastifyInstance]
  const clerk = await login(b, 'clerk.1')
  const user = { appid: a.wechat.appid, openid: sim.openidOf('clerk') }
  const onB = async (): Promise<string | undefined> => (await b.inject({ method: 'GET', url: '/refunds', headers: { authorization: `Bearer ${clerk.accessToken}` } })).json().code
  t.equal(await onB(), 'AUTH_FORBIDDEN')
  await a.wechatAuthSessions.setAccess(user, { permissions: ['order:*'] })
  t.equal(await onB(), undefined, 'granted on A: B lets the very next request through')
  await a.wechatAuthSessions.setAccess(user, { permissions: ['order:read'] })
  t.equal(await onB(), 'AUTH_FORBIDDEN', 'narrowed on A: B refuses the very next request')
  await b.wechatAuthSessions.setAccess(user, { roles: ['x'], permissions: ['order:refund'] })
  t.same((await a.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${clerk.accessToken}` } })).json().roles, ['x'], 'and the other way round')
})
