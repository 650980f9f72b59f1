// fastify.authorize on a host's routes, with a real Redis: roles and permissions from resolveUser and
// from the host API, step-up (aged in Redis itself, no sleeping), service bans, the codes and details
// of each refusal, and compositions with @fastify/auth.
import fastifyAuth from '@fastify/auth'
import type { FastifyInstance } from 'fastify'
import { test, type Test } from 'tap'
import { wechatAuthErrorHandler } from '../../index.js'
import { userTag } from '../../lib/ids.js'
import { keyNames, SEP, sessionField, unpack } from '../../lib/store/redis-layout.js'
import { bearer, buildApp, login, redisClient, startRedis, startSim, type Pair } from '../helper.js'

async function setup (t: Test) {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    // stepUpAgo writes Redis behind the gateway's back and the very next request must see it: strict.
    // (Tracked, the default, sees it within the invalidation's trip: test/access-cache.test.ts.)
    config: { ACCESS_CHECK: 'strict' },
    // The host's own users: root is an admin from its database.
    resolveUser: async ({ openid }) => openid === sim.openidOf('root') ? { userId: 'u-root', roles: ['admin'], permissions: ['order:*'] } : { userId: `u-${openid}` },
    extend: (app: FastifyInstance) => {
      // The gateway's error handler on the host's routes: the `detail` of each refusal reaches clients.
      app.setErrorHandler(wechatAuthErrorHandler)
      app.register(fastifyAuth).after(() => {
        const ok = async (): Promise<{ ok: true }> => ({ ok: true })
        app.get('/admin-only', { onRequest: app.authorize({ roles: ['admin'] }) }, ok)
        app.get('/refund', { onRequest: [app.authenticate, app.authorize({ permissions: ['order:refund'], stepUp: true })] }, ok)
        app.get('/recent', { onRequest: app.authorize({ stepUp: 60 }) }, ok)
        app.get('/reports', { onRequest: app.authorize({ roles: ['auditor'], permissions: ['report:read'], mode: 'any' }) }, ok)
        app.get('/pay', { onRequest: app.authorize({ service: 'pay' }) }, ok)
        app.get('/either', { onRequest: app.auth([app.authorize({ roles: ['admin'] }), app.authorize({ permissions: ['report:read'] })]) }, ok)
        app.get('/both', { onRequest: app.auth([app.authenticate, app.authorize({ roles: ['admin'] })], { relation: 'and' }) }, ok)
      })
    }
  })
  const inspect = redisClient(t, redis.url)
  /** Sets when a session last stepped up, straight in Redis: the step-up's age without waiting. */
  const stepUpAgo = async (p: Pair, sub: string, ms: number): Promise<void> => {
    const sid = (await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(p.accessToken) })).json().sessionId as string
    const key = keyNames(redis.prefix).user(userTag(app.wechat.appid, sub))
    const { rotatedAt, nonce } = unpack('rotation', await inspect.hget(key, sessionField(sid, 'rotation')))
    await inspect.hset(key, sessionField(sid, 'rotation'), [rotatedAt, nonce, String(Date.now() - ms)].join(SEP))
  }
  const get = async (url: string, p?: Pair) => await app.inject({ method: 'GET', url, headers: p === undefined ? {} : bearer(p.accessToken) })
  return { app, sim, get, stepUpAgo }
}

test('roles and permissions from resolveUser: let through, or 403 AUTH_FORBIDDEN naming what is missing', async (t) => {
  const { app, get } = await setup(t)
  const root = await login(app, 'root.1')
  const guest = await login(app, 'guest.1')
  t.same((await get('/admin-only', root)).json(), { ok: true })
  const refused = await get('/admin-only', guest)
  t.equal(refused.statusCode, 403)
  t.match(refused.json(), { code: 'AUTH_FORBIDDEN', message: 'Not allowed: role admin', detail: { mode: 'all', roles: 'admin' } })
  const missing = await get('/admin-only')
  t.equal(missing.statusCode, 401, 'authorize authenticates when no hook before it did')
  t.equal(missing.json().code, 'AUTH_TOKEN_MISSING')
  t.match((await get('/reports', guest)).json(), { code: 'AUTH_FORBIDDEN', message: 'Not allowed: one of role auditor, permission report:read' })
})

test('the host changes roles and permissions: the next request sees them, no new token needed', async (t) => {
  const { app, sim, get } = await setup(t)
  const guest = await login(app, 'guest.2')
  const user = { appid: app.wechat.appid, openid: sim.openidOf('guest') }
  await app.wechatAuthSessions.setAccess(user, { permissions: ['report:read'] })
  t.equal((await get('/reports', guest)).statusCode, 200, 'granted: mode any needs one')
  t.same((await get('/auth/me', guest)).json().permissions, ['report:read'], 'and /auth/me shows it')
  await app.wechatAuthSessions.setAccess(user, {})
  t.equal((await get('/reports', guest)).json().code, 'AUTH_FORBIDDEN', 'taken away: refused at once')
  t.same(await app.wechatAuthSessions.userState(user).then((s) => [s.sub, s.roles, s.permissions]), [`u-${sim.openidOf('guest')}`, [], []],
    'named by openid: the user it logged in as')
})

test('step-up: 401 AUTH_STEP_UP_REQUIRED until the session steps up; a route may ask for a more recent one', async (t) => {
  const { app, get, stepUpAgo } = await setup(t)
  const root = await login(app, 'root.2')
  const refused = await get('/refund', root)
  t.equal(refused.statusCode, 401)
  t.match(refused.json(), { code: 'AUTH_STEP_UP_REQUIRED', detail: { maxAgeSeconds: '300' } })
  const step = await app.inject({ method: 'POST', url: '/auth/step-up', headers: bearer(root.accessToken), payload: { code: 'root.3' } })
  t.equal(step.statusCode, 200)
  t.equal((await get('/refund', root)).statusCode, 200, 'stepped up: the same token is let through')
  t.equal((await get('/recent', root)).statusCode, 200)
  await stepUpAgo(root, 'u-root', 120_000)
  t.equal((await get('/refund', root)).statusCode, 200, 'two minutes later: within STEP_UP_TTL')
  t.match((await get('/recent', root)).json(), { code: 'AUTH_STEP_UP_REQUIRED', detail: { maxAgeSeconds: '60' } }, 'too old for a 60 s route')
  await stepUpAgo(root, 'u-root', 301_000)
  t.equal((await get('/refund', root)).json().code, 'AUTH_STEP_UP_REQUIRED', 'an expired step-up')
  const other = await login(app, 'root.4')
  t.equal((await get('/refund', other)).json().code, 'AUTH_STEP_UP_REQUIRED', 'a step-up belongs to its session, not to the user')
})

test('a ban from one service: that service\'s routes answer 403 AUTH_ACCOUNT_BANNED, the rest works, unban lifts it', async (t) => {
  const { app, sim, get } = await setup(t)
  const guest = await login(app, 'guest.3')
  const user = { appid: app.wechat.appid, sub: `u-${sim.openidOf('guest')}` }
  const until = new Date(Date.now() + 3_600_000)
  await app.wechatAuthSessions.ban(user, { reason: 'chargeback', service: 'pay', until })
  const refused = await get('/pay', guest)
  t.equal(refused.statusCode, 403)
  t.same(refused.json().detail, { reason: 'chargeback', service: 'pay', until: until.toISOString() })
  t.equal(refused.json().code, 'AUTH_ACCOUNT_BANNED')
  t.equal((await get('/auth/me', guest)).statusCode, 200, 'the session lives on')
  await app.wechatAuthSessions.unban(user, { service: 'pay' })
  t.equal((await get('/pay', guest)).statusCode, 200)
})

test('with @fastify/auth: or and and compositions keep the codes', async (t) => {
  const { app, sim, get } = await setup(t)
  const root = await login(app, 'root.5')
  const guest = await login(app, 'guest.4')
  t.equal((await get('/either', root)).statusCode, 200, 'the admin passes the first')
  t.equal((await get('/either', guest)).json().code, 'AUTH_FORBIDDEN', 'neither')
  await app.wechatAuthSessions.setAccess({ appid: app.wechat.appid, openid: sim.openidOf('guest') }, { permissions: ['report:read'] })
  t.equal((await get('/either', guest)).statusCode, 200, 'the second')
  t.equal((await get('/both', root)).statusCode, 200)
  const both = await get('/both', guest)
  t.equal(both.statusCode, 403)
  t.equal(both.json().code, 'AUTH_FORBIDDEN')
  t.equal((await get('/both')).json().code, 'AUTH_TOKEN_MISSING')
})

test('a requirement with a typo fails when the host builds its routes', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  await t.rejects(buildApp(t, { sim, redisServer: redis, extend: (app) => { app.get('/x', { onRequest: app.authorize({ roles: ['no spaces'] }) }, async () => 1) } }), TypeError)
})
