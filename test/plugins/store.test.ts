import { createClient, createCluster } from '@redis/client'
import Fastify from 'fastify'
import { Cluster, Redis } from 'ioredis'
import { test } from 'tap'
import wechatAuth from '../../app.js'
import { serverOptions } from '../../http/server-options.js'
import configPlugin from '../../plugins/config.js'
import storePlugin from '../../plugins/store.js'
import type { RedisClient } from '../../lib/store/redis-client.js'
import { freePort, startRedis, startRedisCluster, startSim } from '../helper.js'

test('an unreachable REDIS_URL refuses the boot within seconds', async (t) => {
  const sim = await startSim(t)
  const app = Fastify()
  t.teardown(async () => await app.close())
  const started = Date.now()
  const url = `redis://127.0.0.1:${await freePort()}`
  await t.rejects(async () => {
    await app.register(wechatAuth, {
      env: false,
      config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, REDIS_URL: url, STORE_TIMEOUT_MS: 300 }
    })
  }, { message: /REDIS_URL: cannot connect to Redis/ })
  t.ok(Date.now() - started < 3000)
})

test('a client passed in with an offline queue is accepted, with a warning naming the option', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const config = { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, REDIS_KEY_PREFIX: redis.prefix }
  const cases: Array<[string, RedisClient, boolean]> = [
    ['ioredis defaults (as @fastify/redis)', new Redis(redis.url), true],
    ['ioredis without an offline queue', new Redis(redis.url, { enableOfflineQueue: false, lazyConnect: false }), false],
    ['node-redis defaults', createClient({ url: redis.url }), true],
    ['node-redis without an offline queue', createClient({ url: redis.url, disableOfflineQueue: true }), false]
  ]
  for (const [label, client, warned] of cases) {
    if (client instanceof Redis) {
      await client.ping()
      t.teardown(() => { client.disconnect() })
    } else {
      const nodeRedis = client as ReturnType<typeof createClient>
      await nodeRedis.connect()
      t.teardown(() => { nodeRedis.destroy() })
    }
    const lines: string[] = []
    const app = Fastify(serverOptions({ LOG_LEVEL: 'warn', TRUST_PROXY: 'false' }, { logStream: { write: (l) => { lines.push(l) } } }))
    t.teardown(async () => await app.close())
    await app.register(wechatAuth, { redis: client, config })
    await app.ready()
    const warning = lines.some((l) => /offline queue.*enableOfflineQueue: false.*disableOfflineQueue: true/.test(l))
    t.equal(warning, warned, label)
  }
})

test('a Redis that refuses functions (an ACL without fcall): one info line says why scripts go by EVALSHA, without Redis\' message', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const admin = new Redis(redis.url)
  t.teardown(() => { admin.disconnect() })
  await admin.call('ACL', 'SETUSER', 'nofn', 'on', '>pw', '~*', '&*', '+@all', '-fcall')
  const lines: string[] = []
  const app = Fastify(serverOptions({ LOG_LEVEL: 'info', TRUST_PROXY: 'false' }, { logStream: { write: (l) => { lines.push(l) } } }))
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, REDIS_URL: redis.url.replace('redis://', 'redis://nofn:pw@'), REDIS_KEY_PREFIX: redis.prefix } })
  for (const code of ['fn.1', 'fn.2']) t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { code } })).statusCode, 200)
  const told = lines.filter((l) => l.includes('go by EVALSHA'))
  t.equal(told.length, 1, 'once')
  t.match(told[0], /"level":30.*Redis refused FCALL \(a Redis before 7\.0, or an ACL without fcall\): the store's scripts go by EVALSHA, .*tried again every 10 minutes/)
  t.notMatch(told[0], /NOPERM|wxauth/, 'not Redis\' message, nor a function\'s name')
})

test('a node-redis cluster client passed in is accepted; warned about only when the store cannot reload its slot map after a master crash', async (t) => {
  const { nodes } = await startRedisCluster(t)
  const sim = await startSim(t)
  const client = createCluster({ rootNodes: nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })) })
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => { client.destroy() })
  const lines: string[] = []
  const app = Fastify(serverOptions({ LOG_LEVEL: 'warn', TRUST_PROXY: 'false' }, { logStream: { write: (l) => { lines.push(l) } } }))
  t.teardown(async () => await app.close())
  const config = { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url }
  await app.register(wechatAuth, { redis: client, config })
  await app.ready()
  const warned = (): boolean => lines.some((l) => /node-redis cluster client .* does not recover when a master dies outright.*ioredis Cluster.*REDIS_CLUSTER_NODES/.test(l))
  t.notOk(warned(), 'node-redis 5: the store reloads its slot map itself (lib/store/redis-cluster-heal.ts)')
  // A client without that reload (a later version might move it).
  const other = Fastify(serverOptions({ LOG_LEVEL: 'warn', TRUST_PROXY: 'false' }, { logStream: { write: (l) => { lines.push(l) } } }))
  t.teardown(async () => await other.close())
  await other.register(wechatAuth, { redis: Object.create(client, { _slots: { value: undefined } }) as typeof client, config })
  await other.ready()
  t.ok(warned())
})

test('a client passed in wins over REDIS_URL, with a warning', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const client = new Redis(redis.url, { enableOfflineQueue: false, lazyConnect: true })
  t.teardown(() => { client.disconnect() })
  await client.connect()
  const lines: string[] = []
  const app = Fastify(serverOptions({ LOG_LEVEL: 'warn', TRUST_PROXY: 'false' }, { logStream: { write: (l) => { lines.push(l) } } }))
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { redis: client, config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, REDIS_URL: 'redis://127.0.0.1:1', REDIS_KEY_PREFIX: redis.prefix } })
  await app.ready()
  t.ok(lines.some((l) => /REDIS_URL is ignored: the Redis client passed in is the store's/.test(l)))
  t.equal((await app.inject('/health')).statusCode, 200, 'the client passed in serves (REDIS_URL points nowhere)')
})

test('a fresh client passed in before it is ready: the boot waits for it (within 3 × STORE_TIMEOUT_MS)', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const config = { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, REDIS_KEY_PREFIX: redis.prefix }
  const fresh: Array<[string, () => RedisClient]> = [
    // As docs/embedding.md advises: no offline queue, so every command fails until it is connected.
    ['ioredis without an offline queue', () => new Redis(redis.url, { enableOfflineQueue: false })],
    ['ioredis, lazyConnect, without an offline queue', () => new Redis(redis.url, { enableOfflineQueue: false, lazyConnect: true })],
    ['node-redis without an offline queue, connecting', () => {
      const client = createClient({ url: redis.url, disableOfflineQueue: true })
      client.connect().catch(() => {})
      return client
    }]
  ]
  for (const [label, make] of fresh) {
    const client = make()
    t.teardown(() => { if ('disconnect' in client) client.disconnect(); else if (client.isOpen) client.destroy() })
    const app = Fastify()
    t.teardown(async () => await app.close())
    await app.register(wechatAuth, { redis: client, config })
    t.same((await app.inject('/health')).json(), { status: 'ok', store: 'redis' }, label)
  }
})

test('a client passed in that cannot become ready refuses the boot, saying what to do', async (t) => {
  const sim = await startSim(t)
  const config = { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, STORE_TIMEOUT_MS: 100 }
  const notConnected = createClient({ url: `redis://127.0.0.1:${await freePort()}`, disableOfflineQueue: true })
  const unreachable = new Redis(`redis://127.0.0.1:${await freePort()}`, { enableOfflineQueue: false })
  unreachable.on('error', () => {})
  t.teardown(() => { unreachable.disconnect() })
  const ended = new Redis(`redis://127.0.0.1:${await freePort()}`, { enableOfflineQueue: false, lazyConnect: true })
  ended.disconnect()
  const cases: Array<[RedisClient, RegExp]> = [
    [notConnected, /the node-redis client passed in is not connected: call `await client\.connect\(\)` before registering the gateway/],
    [unreachable, /the Redis client passed in is not ready within 300 ms \(its status: (connecting|reconnecting|close)\): check that Redis is up/],
    [ended, /the Redis client passed in is closed \(its status: end\)/]
  ]
  for (const [client, message] of cases) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    const started = Date.now()
    await t.rejects(async () => { await app.register(wechatAuth, { redis: client, config }) }, { message })
    t.ok(Date.now() - started < 2000, 'within the boot deadline')
  }
})

test('registered alone, it refuses a redis option that is not a client, naming it (CONFIG_INVALID)', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(configPlugin, { config: {} })
  await t.rejects(async () => { await app.register(storePlugin, { redis: 'redis://127.0.0.1:6379' as never }); await app.ready() },
    { code: 'CONFIG_INVALID', message: /wechatAuthStore: option redis must be a Redis client .*a URL goes in config\.REDIS_URL/ })
})

test('a fresh ioredis Cluster without an offline queue: the boot waits for it to be ready', async (t) => {
  const { nodes } = await startRedisCluster(t)
  const sim = await startSim(t)
  const cluster = new Cluster(nodes, { enableOfflineQueue: false })
  cluster.on('error', () => {})
  t.teardown(() => { cluster.disconnect() })
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { redis: cluster, config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url } })
  t.same((await app.inject('/health')).json(), { status: 'ok', store: 'redis' })
})
