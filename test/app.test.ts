import fastifyJwt from '@fastify/jwt'
import rateLimit from '@fastify/rate-limit'
import { createClient } from '@redis/client'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { test } from 'tap'
import wechatAuth, { type WechatAuthOptions } from '../app.js'
import * as pkg from '../index.js'
import { JWT_SECRET, startRedis, startSim } from './helper.js'

// The host's own @fastify/jwt users, typed its own way: the gateway's types must not clash (TS2717).
declare module '@fastify/jwt' {
  interface FastifyJWT {
    user: { name: string }
  }
}

test('drops into an existing Fastify app: own routes, own Redis client, own prefix, own jwt', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const hostRedis = new Redis(redis.url)
  t.teardown(() => hostRedis.disconnect())

  const host = Fastify()
  t.teardown(async () => await host.close())
  // The host already uses @fastify/jwt for its own tokens; the gateway's must not clash with it.
  await host.register(fastifyJwt, { secret: 'the-host-apps-own-secret-0123456789' })
  host.setErrorHandler((err: { statusCode?: number, code?: string }, _request, reply) => reply.code(err.statusCode ?? 500).send({ host: true, code: err.code }))
  host.get('/public', async () => ({ hello: 'world' }))
  host.get('/host-only', { onRequest: async (request) => { await request.jwtVerify() } }, async (request) => ({ name: request.user.name }))

  const seen: unknown[] = []
  await host.register(wechatAuth, {
    env: false,
    redis: hostRedis,
    healthPath: false,
    config: {
      WECHAT_APPID: sim.appid,
      WECHAT_SECRET: sim.secret,
      WECHAT_API_BASE: sim.url,
      JWT_SECRET,
      AUTH_PREFIX: '/api/wx',
      REDIS_KEY_PREFIX: redis.prefix
    },
    resolveUser: async (identity) => {
      seen.push(identity)
      return { userId: `user-${identity.openid.slice(0, 6)}`, claims: { role: 'member' } }
    }
  })
  host.register(async function protectedRoutes (child) {
    child.addHook('onRequest', child.authenticate)
    child.get('/api/profile', async (request) => ({ sub: request.wechatAuthUser.sub, role: request.wechatAuthUser.role, openid: request.wechatAuthUser.openid }))
  })
  await host.ready()

  t.same((await host.inject('/public')).json(), { hello: 'world' }, 'host routes untouched')
  t.equal((await host.inject('/health')).statusCode, 404, 'no health route when the host says so')
  t.equal((await host.inject({ method: 'POST', url: '/auth/login', payload: { code: 'x' } })).statusCode, 404, 'default prefix not used')

  const login = await host.inject({ method: 'POST', url: '/api/wx/login', payload: { code: 'alice' } })
  t.equal(login.statusCode, 200)
  const { accessToken, refreshToken } = login.json()
  const openid = sim.openidOf('alice')
  t.same(seen, [{ openid, unionid: sim.unionidOf('alice'), appid: sim.appid, source: 'mp' }], 'resolveUser got the identity (and where it came from)')

  const profile = await host.inject({ method: 'GET', url: '/api/profile', headers: { authorization: `Bearer ${accessToken as string}` } })
  t.same(profile.json(), { sub: `user-${openid.slice(0, 6)}`, role: 'member', openid }, 'the user resolveUser named, with its claims')

  const denied = await host.inject({ method: 'GET', url: '/api/profile' })
  t.same(denied.json(), { host: true, code: 'AUTH_TOKEN_MISSING' }, 'the host error handler sees our coded errors')

  const refreshed = await host.inject({ method: 'POST', url: '/api/wx/refresh', payload: { refreshToken } })
  t.equal(refreshed.statusCode, 200)
  t.equal(host.jwt.decode<{ role: string }>(refreshed.json().accessToken)?.role, 'member', 'custom claims survive refresh')
  t.throws(() => host.jwt.verify(accessToken as string), 'the host\'s own jwt does not accept gateway tokens')
  const hostUser = await host.inject({ method: 'GET', url: '/host-only', headers: { authorization: `Bearer ${host.jwt.sign({ name: 'host-user' })}` } })
  t.same(hostUser.json(), { name: 'host-user' }, 'request.user stays the host\'s, filled by its own jwt')
  const gatewayTokenOnHost = await host.inject({ method: 'GET', url: '/host-only', headers: { authorization: `Bearer ${accessToken as string}` } })
  t.equal(gatewayTokenOnHost.statusCode, 401)

  await host.close()
  t.equal(await hostRedis.ping(), 'PONG', 'the host\'s Redis client is left open')
})

test('a host\'s node-redis client works as well, and is left open', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const hostRedis = createClient({ url: redis.url })
  hostRedis.on('error', () => {})
  await hostRedis.connect()
  t.teardown(async () => { if (hostRedis.isOpen) await hostRedis.close() })
  const app = Fastify()
  await app.register(wechatAuth, { env: false, redis: hostRedis, config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, REDIS_KEY_PREFIX: redis.prefix } })
  const pair = (await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'nora.1' } })).json()
  t.equal((await app.inject({ method: 'GET', url: '/health' })).json().store, 'redis')
  const me = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${pair.accessToken as string}` } })
  t.equal(me.json().openid, sim.openidOf('nora'))
  const rotated = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: pair.refreshToken } })
  t.equal(rotated.statusCode, 200)
  t.ok(await hostRedis.exists(`${redis.prefix}{${pair.refreshToken.split('.')[0] as string}}`), 'the session is in the host\'s Redis')
  await app.close()
  t.equal(await hostRedis.ping(), 'PONG', 'the host\'s client is left open')
})

test('a host client with its own keyPrefix: logout on all devices still ends every session', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const hostRedis = new Redis(redis.url, { keyPrefix: 'hostapp:' })
  t.teardown(() => hostRedis.disconnect())
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { env: false, redis: hostRedis, config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, REDIS_KEY_PREFIX: redis.prefix } })
  const a = (await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'pat.1' } })).json()
  const b = (await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'pat.2' } })).json()
  const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${a.accessToken as string}` }, payload: { allDevices: true } })
  t.equal(out.statusCode, 204)
  const other = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${b.accessToken as string}` } })
  t.equal(other.json().code, 'AUTH_TOKEN_REVOKED', 'the other device is logged out')
  const rt = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: b.refreshToken } })
  t.equal(rt.json().code, 'AUTH_REFRESH_INVALID')
  const plain = new Redis(redis.url)
  t.teardown(() => plain.disconnect())
  t.ok((await plain.keys(`hostapp:${redis.prefix}*`)).length > 0, 'keys live under the host prefix')
})

test('resolveUser mistakes are refused loudly, not turned into tokens', async (t) => {
  const sim = await startSim(t)
  for (const [name, resolveUser] of [
    ['reserved claim', async () => ({ userId: 'u1', claims: { sub: 'admin' } })],
    ['empty userId', async () => ({ userId: '' })],
    ['control character in userId', async () => ({ userId: 'a\u0001b' })],
    ['DEL in userId', async () => ({ userId: 'a\u007fb' })],
    ['userId of 257 characters', async () => ({ userId: 'x'.repeat(257) })],
    ['claims over 1,024 bytes of JSON', async () => ({ userId: 'u1', claims: { note: '\u00e9'.repeat(508) } })]
  ] as const) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await app.register(wechatAuth, { env: false, resolveUser, config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url } })
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: `u.${name.length}` } })
    t.equal(res.statusCode, 500, name)
    t.same(res.json(), { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal Server Error' }, 'no details leak')
    const calls = sim.calls.length
    const again = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: `u.${name.length}` } })
    t.equal(again.json().code, 'WX_CODE_USED', 'WeChat accepted the code: it stays used')
    t.equal(sim.calls.length, calls, 'and is not sent again')
  }
})

test('the package exports the plugin set, each plugin usable alone', async (t) => {
  t.equal(pkg.default, wechatAuth)
  for (const name of ['wechatAuthConfig', 'wechatAuthStore', 'wechatAuthSimulator', 'wechat', 'wechatAuthJwt', 'wechatAuthSessions', 'wechatAuthRoutes', 'wechatAuthHealth', 'startSimulator', 'createMemoryStore', 'createRedisStore', 'createSessions', 'createAccessTokens', 'createWeChatApi', 'decryptUserData', 'verifyUserSignature', 'sessionKeySignature'] as const) {
    t.type(pkg[name], 'function', name)
  }
  const sim = await startSim(t)
  // Only the config, store, wechat and JWT plugins: a host that issues tokens its own way.
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(pkg.wechatAuthConfig, { env: false, config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url } })
  await app.register(pkg.wechatAuthStore)
  await app.register(pkg.wechat)
  await app.register(pkg.wechatAuthJwt)
  await app.ready()
  const id = await app.wechat.code2Session('dave')
  t.equal(id.openid, sim.openidOf('dave'))
  t.equal(app.wechatAuthStore.kind, 'memory')

  const wrongOrder = Fastify()
  t.teardown(async () => await wrongOrder.close())
  await t.rejects(async () => { await wrongOrder.register(pkg.wechat); await wrongOrder.ready() }, /wechat-auth-config/, 'a missing dependency fails at boot')
})

test('a host\'s global @fastify/rate-limit counts the gateway\'s limits once, with the gateway\'s budgets and code', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const hostRedis = new Redis(redis.url)
  t.teardown(() => hostRedis.disconnect())
  const counted: string[] = []
  // The host's own store: counts in memory and records each hit, so double counting shows.
  class CountingStore {
    private readonly hits = new Map<string, number>()
    constructor (_options: unknown, private readonly scope = '') {}
    incr (key: string, cb: (err: Error | null, res?: { current: number, ttl: number }) => void): void {
      const k = `${this.scope}${key}`
      counted.push(k)
      this.hits.set(k, (this.hits.get(k) ?? 0) + 1)
      cb(null, { current: this.hits.get(k) as number, ttl: 60_000 })
    }

    child (opts: { routeInfo: { url: string } }): CountingStore { return new CountingStore(undefined, `${opts.routeInfo.url}:`) }
  }
  const host = Fastify()
  t.teardown(async () => await host.close())
  await host.register(rateLimit, { global: true, max: 1000, timeWindow: 60_000, store: CountingStore as never })
  host.get('/host-route', async () => ({ ok: true }))
  await host.register(wechatAuth, {
    redis: hostRedis,
    config: {
      ...{ WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, REDIS_KEY_PREFIX: redis.prefix, RATE_LIMIT_LOGIN_MAX: 3, RATE_LIMIT_QR_POLL_MAX: 3 },
      ...{ WECHAT_OA_APPID: sim.officialAccount.appid, WECHAT_OA_SECRET: sim.officialAccount.secret, WECHAT_OA_AUTHORIZE_URL: `${sim.url}/connect/oauth2/authorize`, H5_RETURN_URLS: 'https://h5.example.com/' }
    }
  })
  await host.ready()
  const statuses: number[] = []
  let last
  for (let i = 0; i < 4; i++) {
    last = await host.inject({ method: 'POST', url: '/auth/login', payload: { code: `alice.${i}` } })
    statuses.push(last.statusCode)
  }
  t.same(statuses, [200, 200, 200, 429], 'the gateway\'s budget (3 a minute), not the host\'s 1000')
  t.equal(last?.json().code, 'RATE_LIMITED', 'and its error code')
  t.equal(counted.filter((k) => k.startsWith('/auth/login:')).length, 4, 'each login counted once, in the host\'s store')
  t.same(await hostRedis.keys(`${redis.prefix}rl:*`), [], 'and not again in the gateway\'s')
  await host.inject('/host-route')
  t.equal(counted.length, 5, 'one count per request in all: the host route by the host\'s global params')
  // A QR login's polls and its event stream: one budget in the host's store too.
  const { id } = (await host.inject({ method: 'POST', url: '/auth/qr' })).json<{ id: string }>()
  const polls = await Promise.all([0, 1, 2].map(async () => (await host.inject(`/auth/qr/${id}`)).statusCode))
  t.same(polls, [200, 200, 200])
  const stream = await host.inject(`/auth/qr/${id}/events`)
  t.same([stream.statusCode, stream.json().code], [429, 'RATE_LIMITED'], 'the stream after three polls: the same budget')
  // H5 login's start, by GET and by HEAD (curl -I): one budget in the host's store too.
  const starts = []
  for (const method of ['GET', 'HEAD', 'GET', 'HEAD'] as const) starts.push((await host.inject({ method, url: '/auth/h5/authorize' })).statusCode)
  t.same(starts, [302, 302, 302, 429])
})

test('an option the gateway does not take, or of the wrong kind, refuses the boot with CONFIG_INVALID naming it', async (t) => {
  const sim = await startSim(t)
  const config = { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url }
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a typo', { config, healthpath: false }, /healthpath is not an option \(healthPath\?\)/],
    ['configuration keys at the top', { config, JWT_SECRET, AUTH_PREFIX: '/api' }, /JWT_SECRET, AUTH_PREFIX: configuration keys go under the config option/],
    ['the configuration at the top, no config', { ...config, JWT_SECRET }, /WECHAT_APPID, WECHAT_SECRET, WECHAT_API_BASE, JWT_SECRET: configuration keys go under the config option/],
    ['Fastify\'s prefix, which it ignores for this plugin', { config, prefix: '/v1' }, /prefix: Fastify ignores it .*AUTH_PREFIX/],
    ['Fastify\'s logLevel, which it ignores for this plugin', { config, logLevel: 'warn' }, /logLevel: Fastify ignores it/],
    ['healthPath a number', { config, healthPath: 123 }, /option healthPath must be a path that starts with \/ \(or false\)/],
    ['healthPath without a slash', { config, healthPath: 'health' }, /option healthPath must be/],
    ['healthPath true', { config, healthPath: true }, /option healthPath must be/],
    ['jwksPath without a slash', { config: { ...config, JWT_ALGORITHM: 'ES256' }, jwksPath: 'jwks' }, /option jwksPath must be/],
    ['openapiPath a number', { config, openapiPath: 5 }, /option openapiPath must be/],
    ['redis a URL', { config, redis: 'redis://127.0.0.1:6379' }, /option redis must be a Redis client .*a URL goes in config\.REDIS_URL/],
    ['redis null', { config, redis: null }, /option redis must be a Redis client/],
    ['redis of no known shape', { config, redis: {} }, /option redis must be a Redis client/],
    ['config null', { config: null }, /option config must be an object/],
    ['env a string', { config, env: 'production' }, /option env must be an object/],
    ['apps an object', { config, apps: { appid: sim.appid, secret: sim.secret } }, /option apps must be an array/],
    ['metrics a string', { config, metrics: 'yes' }, /option metrics must be true, false or an object/],
    ['resolveUser a string', { config, resolveUser: 'nope' }, /option resolveUser must be a function/],
    ['onPhoneNumber a number', { config, onPhoneNumber: 1 }, /option onPhoneNumber must be a function/]
  ]
  for (const [label, opts, message] of cases) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await t.rejects(async () => { await app.register(wechatAuth, opts as WechatAuthOptions); await app.ready() }, { code: 'CONFIG_INVALID', message }, label)
  }
  // Fastify's own register options that it applies to no plugin of this kind, left empty: nothing to refuse.
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { config, prefix: '' } as WechatAuthOptions)
  t.equal((await app.inject('/health')).statusCode, 200)
})

test('each plugin registered alone refuses an option it does not take, naming itself and the option', async (t) => {
  const sim = await startSim(t)
  const config = { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, JWT_SECRET }
  // Each after the plugins it needs, in the order the gateway registers them.
  const chain = [['wechatAuthSimulator', pkg.wechatAuthSimulator], ['wechat', pkg.wechat], ['wechatAuthJwt', pkg.wechatAuthJwt], ['wechatAuthAuthorize', pkg.wechatAuthAuthorize],
    ['wechatAuthSessions', pkg.wechatAuthSessions], ['wechatAuthRoutes', pkg.wechatAuthRoutes]] as const
  for (let i = 0; i < chain.length; i++) {
    const [name, plugin] = chain[i] as (typeof chain)[number]
    const app = Fastify()
    t.teardown(async () => await app.close())
    await app.register(pkg.wechatAuthConfig, { env: false, config })
    await app.register(pkg.wechatAuthStore)
    for (const [, before] of chain.slice(0, i)) await app.register(before as never)
    await t.rejects(async () => { await app.register(plugin as never, { secret: 'x' }); await app.ready() }, { code: 'CONFIG_INVALID', message: new RegExp(`^Invalid configuration: ${name}: secret is not an option`) }, name)
  }
  const routes = Fastify()
  t.teardown(async () => await routes.close())
  await routes.register(pkg.wechatAuthConfig, { env: false, config })
  for (const [, plugin] of [['wechatAuthStore', pkg.wechatAuthStore] as const, ...chain.slice(0, -1)]) await routes.register(plugin as never)
  await routes.register(pkg.wechatAuthRoutes, { prefix: '/v1' })
  await routes.ready()
  t.equal((await routes.inject({ method: 'POST', url: '/v1/login', payload: { code: 'erin' } })).statusCode, 200, 'the route plugin takes Fastify\'s prefix')
})
