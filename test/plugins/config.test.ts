import Fastify from 'fastify'
import { test } from 'tap'
import wechatAuth from '../../app.js'
import configPlugin, { type ConfigPluginOptions } from '../../plugins/config.js'
import { serverOptions } from '../../http/server-options.js'
import { withEnv } from '../helper.js'

test('refuses to boot on a bad value, naming it', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => { await app.register(wechatAuth, { env: false, config: { ACCESS_TOKEN_TTL: 'soon' } }) }, { code: 'CONFIG_INVALID', message: /ACCESS_TOKEN_TTL/ })
})

test('production refuses to boot on development defaults', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => { await app.register(wechatAuth, { env: { NODE_ENV: 'production' } }) }, { message: /requires WECHAT_APPID and WECHAT_SECRET \(or WECHAT_APPS\), REDIS_URL, JWT_SECRET/ })
})

test('development with no configuration runs, and says so loudly', async (t) => {
  const lines: string[] = []
  const app = Fastify(serverOptions({ LOG_LEVEL: 'info', TRUST_PROXY: 'false' }, { logStream: { write: (l) => { lines.push(l) } } }))
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { env: {} })
  await app.ready()
  const warn = lines.map((l) => JSON.parse(l) as { level: number, msg: string, devDefaults?: string[] }).filter((l) => l.level === 40)
  t.match(warn[0], { msg: /DEVELOPMENT MODE/, devDefaults: [/simulator/, /memory/, /JWT_SECRET/] })
  t.match(warn[1], { msg: /WeChat simulator started/ })
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'alice' } })
  t.equal(res.statusCode, 200, 'logs in through the built-in simulator')
})

test('the plugin reads its options only: a host environment is not the gateway configuration', async (t) => {
  const polluted = { JWT_SECRET: 'the-host-apps-own-secret-0123456789abcdef', REDIS_URL: 'redis://10.9.9.9:6379', AUTH_PREFIX: '/host', WECHAT_APPID: 'wx1111111111111111' }
  withEnv(t, polluted)
  for (const opts of [{ env: false as const }, {}]) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await app.register(wechatAuth, opts)
    await app.ready()
    const config = app.wechatAuthConfig
    t.not(config.jwtSecret, polluted.JWT_SECRET, 'the host JWT_SECRET is not used to sign')
    t.equal(config.REDIS_URL, undefined, 'the host REDIS_URL is not used')
    t.same(config.apps, [], 'nor its WECHAT_APPID')
    t.equal(app.wechatAuthStore.kind, 'memory')
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'alice' } })
    t.equal(res.statusCode, 200, 'routes under the default prefix, not the host AUTH_PREFIX')
  }
})

test('a process with NODE_ENV=production never gets development defaults: its config must say production too', async (t) => {
  withEnv(t, { NODE_ENV: 'production' })
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => { await app.register(wechatAuth, {}) }, { code: 'CONFIG_INVALID', message: /NODE_ENV: 'production'/ })
  const explicit = Fastify()
  t.teardown(async () => await explicit.close())
  await t.rejects(async () => { await explicit.register(wechatAuth, { config: { NODE_ENV: 'production' } }) },
    { code: 'CONFIG_INVALID', message: /requires WECHAT_APPID/ }, 'said explicitly, the production rules apply')
})

test('a host with fastify.redis that does not pass it is told how', async (t) => {
  const lines: string[] = []
  const app = Fastify(serverOptions({ LOG_LEVEL: 'info', TRUST_PROXY: 'false' }, { logStream: { write: (l) => { lines.push(l) } } }))
  t.teardown(async () => await app.close())
  app.decorate('redis', {})
  await app.register(wechatAuth, {})
  await app.ready()
  const warn = lines.map((l) => JSON.parse(l) as { devDefaults?: string[] }).find((l) => l.devDefaults !== undefined)
  t.match(warn?.devDefaults, [/simulator/, /memory.*pass it as `redis: fastify.redis`/])
  const prod = Fastify()
  t.teardown(async () => await prod.close())
  prod.decorate('redis', {})
  await t.rejects(async () => { await prod.register(wechatAuth, { config: { NODE_ENV: 'production' } }) },
    { code: 'CONFIG_INVALID', message: /REDIS_URL \(this app has fastify.redis: pass it as `redis: fastify.redis`\)/ })
})

test('registered alone, it refuses what is not its option, naming it (CONFIG_INVALID)', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ JWT_SECRET: 'a-secret-of-the-host-0123456789abcdefgh' }, /wechatAuthConfig: JWT_SECRET: configuration keys go under the config option/],
    [{ config: null }, /wechatAuthConfig: option config must be an object/],
    [{ env: 'production' }, /wechatAuthConfig: option env must be an object/],
    [{ config: {}, redis: {} }, /wechatAuthConfig: redis is not an option/]
  ]
  for (const [opts, message] of cases) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await t.rejects(async () => { await app.register(configPlugin, opts as ConfigPluginOptions); await app.ready() }, { code: 'CONFIG_INVALID', message }, JSON.stringify(opts))
  }
})

test('env: process.env holds the host\'s own LOG_LEVEL, WORKERS, ADMIN_* and listener settings: not the plugin\'s, not refused', async (t) => {
  // Each of these refused the boot: values the standalone server would refuse, for a server the plugin does not run.
  const host = { LOG_LEVEL: 'warning', WORKERS: '4', ADMIN_TOKEN: 'the-host-s-own', ADMIN_PORT: '9000', METRICS_PORT: '9100', PORT: '9100', HTTP_REQUEST_TIMEOUT_MS: '0', TRUST_PROXY: 'yes', REQUEST_ID_HEADER: 'cookie' }
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(configPlugin, { env: host })
  await app.ready()
  t.match(app.wechatAuthConfig, { LOG_LEVEL: 'info', WORKERS: '1', PORT: 9100 }, 'the defaults; PORT is still read (the simulator\'s port follows it)')
  t.equal(app.wechatAuthConfig.ADMIN_TOKEN, undefined)
  const strict = Fastify()
  t.teardown(async () => await strict.close())
  await t.rejects(async () => { await strict.register(configPlugin, { env: false, config: { LOG_LEVEL: 'warning' as never } }); await strict.ready() }, { code: 'CONFIG_INVALID', message: /LOG_LEVEL/ }, 'in config, given on purpose, still checked')
})
