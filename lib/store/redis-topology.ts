// The Redis client the gateway makes for itself from its configuration: one server (REDIS_URL), a
// Redis Cluster (REDIS_CLUSTER_NODES) or a master found through Sentinel (REDIS_SENTINELS), each
// failing fast while Redis is away and finding its way back by itself.
//
// Why two libraries. One server and Sentinel use node-redis (@redis/client: less CPU per command,
// redis-client.ts); its Sentinel client follows a promotion. Its cluster client (5.12) reloads the
// slot map only on a MOVED answer, and a master killed outright answers nothing: a third of the
// requests kept failing until a restart (upstream redis/node-redis#2806). ioredis' Cluster refreshes
// the slot map on connection errors and on a timer, so REDIS_CLUSTER_NODES uses it; it is loaded only
// then.
import { createSentinel } from '@redis/client'
import { connectRedis, type NodeRedisClientLike, type RedisClient } from './redis-client.js'
import type { Config } from '../schemas.js'

export type TopologyConfig = Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_NODE_USERNAME' | 'REDIS_NODE_PASSWORD' | 'STORE_TIMEOUT_MS'>

/** Which way the configuration reaches Redis, if any. */
export function topologyOf (config: TopologyConfig): 'single' | 'cluster' | 'sentinel' | 'none' {
  if (config.REDIS_URL !== undefined) return 'single'
  if (config.REDIS_CLUSTER_NODES !== undefined) return 'cluster'
  if (config.REDIS_SENTINELS !== undefined) return 'sentinel'
  return 'none'
}

interface Node { host: string, port: number, username?: string, password?: string, tls: boolean }

/** The comma-separated URLs of a setting, without ever putting one (a password) in an error message. */
function nodesOf (setting: string, value: string): Node[] {
  const decode = (s: string): string | undefined => s === '' ? undefined : decodeURIComponent(s)
  return value.split(',').map((text, i) => {
    try {
      const url = new URL(text)
      const node: Node = { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 6379 : Number(url.port), tls: url.protocol === 'rediss:' }
      const username = decode(url.username)
      const password = decode(url.password)
      if (username !== undefined) node.username = username
      if (password !== undefined) node.password = password
      return node
    } catch {
      throw new Error(`${setting}: URL ${i + 1} is not valid (percent-encode special characters in a password)`)
    }
  })
}

// The same reconnect rhythm as the single client's: capped, jittered, endless.
const backoff = (retries: number): number => Math.min((retries + 1) * 100, 2000) + Math.floor(Math.random() * 100)

/** Rejects after `ms` with `message`, unless `promise` settles first. */
async function within<T> (promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(message())) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Refuses a REDIS_URL whose server cannot be the store: a Sentinel, a replica (read-only), a node of
 * a Redis Cluster (most users' keys live elsewhere). Each message says what to set instead. A server
 * that does not know ROLE or INFO (renamed by a provider) is taken as it is.
 */
export async function checkSingleServer (client: NodeRedisClientLike): Promise<void> {
  const role = await client.sendCommand(['ROLE']).catch(() => null) as unknown[] | null
  const kind = Array.isArray(role) ? String(role[0]) : null
  if (kind === 'sentinel') throw new Error('REDIS_URL points at a Sentinel, which stores nothing: set REDIS_SENTINELS to the sentinels\' URLs and REDIS_SENTINEL_NAME to the master group\'s name instead')
  if (kind === 'slave' || kind === 'replica') throw new Error('REDIS_URL points at a replica, which cannot be written: point it at the master, or, when Sentinel manages them, set REDIS_SENTINELS and REDIS_SENTINEL_NAME instead')
  const info = await client.sendCommand(['INFO', 'cluster']).catch(() => '') as string
  if (/^cluster_enabled:1/m.test(String(info))) throw new Error('REDIS_URL points at a node of a Redis Cluster, which holds only some users\' keys: set REDIS_CLUSTER_NODES to one or more nodes\' URLs instead')
}

async function connectCluster (value: string, timeoutMs: number): Promise<RedisClient> {
  const nodes = nodesOf('REDIS_CLUSTER_NODES', value)
  const first = nodes[0] as Node
  const { Cluster } = await import('ioredis')
  let lastError = ''
  const cluster = new Cluster(nodes.map(({ host, port }) => ({ host, port })), {
    // Fail at once while a slot has no reachable master (503), rather than queue and run late.
    enableOfflineQueue: false,
    scaleReads: 'master',
    // A promotion is found by the next error or within this time, even if no command was MOVED.
    slotsRefreshInterval: 2000,
    slotsRefreshTimeout: timeoutMs,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    clusterRetryStrategy: backoff,
    redisOptions: {
      ...(first.username !== undefined ? { username: first.username } : {}),
      ...(first.password !== undefined ? { password: first.password } : {}),
      ...(first.tls ? { tls: {} } : {}),
      connectTimeout: timeoutMs,
      // A command in flight when its node drops fails (503) instead of being sent again later.
      maxRetriesPerRequest: 0
    }
  })
  cluster.on('error', (err: Error) => { lastError = err.message })
  try {
    await within(new Promise<void>((resolve) => { cluster.once('ready', () => { resolve() }) }), timeoutMs * 3,
      () => `REDIS_CLUSTER_NODES: the cluster is not ready within ${timeoutMs * 3} ms${lastError === '' ? '' : `; last error: ${lastError}`}`)
    return cluster
  } catch (err) {
    cluster.disconnect()
    throw err
  }
}

async function connectSentinel (config: TopologyConfig & { REDIS_SENTINELS: string, REDIS_SENTINEL_NAME: string }): Promise<RedisClient> {
  const sentinels = nodesOf('REDIS_SENTINELS', config.REDIS_SENTINELS)
  const first = sentinels[0] as Node
  const timeoutMs = config.STORE_TIMEOUT_MS
  const socket = { connectTimeout: timeoutMs, reconnectStrategy: backoff, ...(first.tls ? { tls: true as const } : {}) }
  let lastError = ''
  const client = createSentinel({
    name: config.REDIS_SENTINEL_NAME,
    sentinelRootNodes: sentinels.map(({ host, port }) => ({ host, port })),
    nodeClientOptions: {
      socket,
      ...(config.REDIS_NODE_USERNAME !== undefined ? { username: config.REDIS_NODE_USERNAME } : {}),
      ...(config.REDIS_NODE_PASSWORD !== undefined ? { password: config.REDIS_NODE_PASSWORD } : {})
    },
    sentinelClientOptions: {
      socket,
      ...(first.username !== undefined ? { username: first.username } : {}),
      ...(first.password !== undefined ? { password: first.password } : {})
    }
  })
  client.on('error', (err: Error) => { lastError = err.message })
  try {
    await within(client.connect(), timeoutMs * 3,
      () => `REDIS_SENTINELS: no master '${config.REDIS_SENTINEL_NAME}' reachable within ${timeoutMs * 3} ms${lastError === '' ? '' : `; last error: ${lastError}`}`)
    return client
  } catch (err) {
    client.destroy()
    throw err
  }
}

/** The client the configuration asks for, connected; null when it names no Redis. */
export async function connectConfigured (config: TopologyConfig): Promise<RedisClient | null> {
  switch (topologyOf(config)) {
    case 'single': {
      const client = await connectRedis({ url: config.REDIS_URL as string, timeoutMs: config.STORE_TIMEOUT_MS })
      try {
        await checkSingleServer(client)
      } catch (err) {
        client.destroy()
        throw err
      }
      return client
    }
    case 'cluster': return await connectCluster(config.REDIS_CLUSTER_NODES as string, config.STORE_TIMEOUT_MS)
    case 'sentinel': return await connectSentinel(config as TopologyConfig & { REDIS_SENTINELS: string, REDIS_SENTINEL_NAME: string })
    case 'none': return null
  }
}
