// Decorates fastify.wechatAuthStore: the session store. Redis when REDIS_URL, REDIS_CLUSTER_NODES or
// REDIS_SENTINELS is set or the host app passes a client (which is then left open on close); the
// in-memory store otherwise.
import fp from 'fastify-plugin'
import { createMemoryStore } from '../lib/store/memory.js'
import { checkOptions, REDIS } from '../lib/plugin-options.js'
import { clientReady, disconnectClient, hasOfflineQueue, type RedisClient } from '../lib/store/redis-client.js'
import { createRedisStore } from '../lib/store/redis.js'
import { accessCacheFor } from '../lib/store/redis-access-cache.js'
import { sweepWarning } from '../lib/store/redis-kept.js'
import { scriptsNotices } from '../lib/store/redis-script-runner.js'
import { recoveryWarning } from '../lib/store/redis-recovery.js'
import { connectConfigured, topologyOf } from '../lib/store/redis-topology.js'
import { cannotWait, shortWarning } from '../lib/store/redis-wait.js'
import type { SessionStore } from '../lib/store/types.js'

export interface StorePluginOptions {
  /** A client of the host app's. The store uses it and never closes it. */
  redis?: RedisClient
}

declare module 'fastify' {
  interface FastifyInstance {
    wechatAuthStore: SessionStore
  }
}

export default fp<StorePluginOptions>(async function wechatAuthStore (fastify, opts) {
  checkOptions(opts, { plugin: 'wechatAuthStore', rules: { redis: REDIS }, encapsulated: false })
  const config = fastify.wechatAuthConfig
  // A client passed in, or the one the configuration asks for (REDIS_URL, REDIS_CLUSTER_NODES,
  // REDIS_SENTINELS: lib/store/redis-topology.ts), or none (the memory store, in development).
  const ownsClient = opts.redis === undefined && topologyOf(config) !== 'none'
  const replicas = config.REDIS_WAIT_REPLICAS // checked with the configuration (lib/config-checks.ts), but the client's kind
  const refusal = replicas > 0 && opts.redis !== undefined ? cannotWait(opts.redis) : null
  if (refusal !== null) throw new Error(refusal)
  // A fresh client passed in is still connecting: its first commands would fail (no offline queue).
  if (opts.redis !== undefined) await clientReady(opts.redis, config.STORE_TIMEOUT_MS * 3)
  const client: RedisClient | null = opts.redis ?? await connectConfigured(config)
  const wait = { replicas, timeoutMs: config.REDIS_WAIT_TIMEOUT_MS, onShort: shortWarning((msg) => { fastify.log.warn(msg) }) }
  // ACCESS_CHECK=tracked: checkAccess's read copy, where the client allows one (lib/store/redis-access-cache.ts).
  const tracked = client === null ? {} : await accessCacheFor(client, config).catch((err: unknown) => { if (ownsClient) disconnectClient(client); throw err })
  const store = client === null
    ? createMemoryStore()
    : createRedisStore({ client, keyPrefix: config.REDIS_KEY_PREFIX, timeoutMs: config.STORE_TIMEOUT_MS, ownsClient, wait, accessCache: tracked.accessCache, onSweepFailed: sweepWarning((msg) => { fastify.log.warn(msg) }), ...scriptsNotices((msg) => { fastify.log.info(msg) }) })
  try {
    await store.ping()
  } catch (err) {
    await store.close()
    throw new Error('the session store does not answer at boot (check REDIS_URL or the Redis client passed in)', { cause: err })
  }
  if (opts.redis !== undefined && hasOfflineQueue(opts.redis) === true) {
    fastify.log.warn('the Redis client passed in has an offline queue: during an outage requests still fail after STORE_TIMEOUT_MS, but their commands run late, when Redis returns. Give the gateway a client without one (ioredis, @fastify/redis: enableOfflineQueue: false; node-redis: disableOfflineQueue: true)')
  }
  if (opts.redis !== undefined && config.REDIS_URL !== undefined) {
    fastify.log.warn('REDIS_URL is ignored: the Redis client passed in is the store\'s')
  }
  // A node-redis cluster client that would not find a crashed master's replica (lib/store/redis-recovery.ts).
  const recovery = opts.redis === undefined ? null : recoveryWarning(opts.redis)
  if (recovery !== null) fastify.log.warn(recovery)
  // With metrics (plugins/metrics.ts, registered before), each operation is timed, and the read copy counted.
  const metrics = fastify.hasDecorator('wechatAuthMetrics') ? fastify.wechatAuthMetrics : undefined
  fastify.decorate('wechatAuthStore', metrics === undefined ? store : metrics.instrumentStore(store))
  if (metrics !== undefined && tracked.accessCache !== undefined) metrics.watchAccessCache(tracked.accessCache)
  fastify.addHook('onClose', async () => { await store.close() })
  // Debug: a standalone start says one line (Fastify's 'Server listening'), warnings aside.
  // With Redis: the access check's mode, and why a client that cannot be tracked runs strict (docs/design.md).
  const accessCheck = client === null ? {} : { accessCheck: tracked.accessCache === undefined ? 'strict' : 'tracked', strictBecause: tracked.strictBecause }
  fastify.log.debug({ store: store.kind, ...accessCheck }, 'session store ready')
}, { name: 'wechat-auth-store', fastify: '5.x', dependencies: ['wechat-auth-config'] })
