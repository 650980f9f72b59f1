// The Redis client the gateway makes for itself from its configuration: one server (REDIS_URL), a
// Redis Cluster (REDIS_CLUSTER_NODES) or a master found through Sentinel (REDIS_SENTINELS), each
// failing fast while Redis is away, never sending a command again after its answer was lost, and
// finding its way back by itself.
//
// Which library. One server uses node-redis (@redis/client: less CPU per command, redis-client.ts).
// Its cluster client reloads the slot map on a MOVED answer, which a master killed outright never
// sends: in 5.12 a third of the requests kept failing until a restart (upstream redis/node-redis#2806).
// 6.x also reloads it while a node reconnects (topologyRefreshOnReconnectionAttemptStrategy, 5 s after
// the first attempt by default: back within 3.5 s of a promotion, 5.7 s when the promotion came just
// after a reload; test/redis-failover.test.ts), but the gateway depends on 5.x, whose cluster client
// does not; a host may pass a 6.x one, and the store reloads either's slot map itself after a
// connection failure (lib/store/redis-cluster-heal.ts). Its Sentinel client holds a command sent while
// the master is gone until it has found the new one, seconds after the caller was told 503, and then
// runs it (a rotation applied after its client gave up). ioredis does neither: its Cluster refreshes the slot map on connection
// errors and on a timer, and its Sentinel mode fails such a command at once and reconnects to the
// promoted master; both are used here (loaded only then). A dropped connection fails the commands in
// flight (retryDelayOnFailover 0: ioredis would otherwise queue and send them again, and a write whose
// answer was lost would run twice).
import { connectRedis, reconnectDelay, within, type NodeRedisClientLike, type RedisClient } from './redis-client.js'
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

/** A setting that names servers of another kind, told at once and with the setting to use instead. */
const WRONG_KIND = {
  cluster: 'REDIS_CLUSTER_NODES points at a server without cluster mode: set REDIS_URL to it instead (or REDIS_SENTINELS and REDIS_SENTINEL_NAME when Sentinel manages it)',
  sentinel: 'REDIS_SENTINELS points at a Redis server, not a Sentinel: set REDIS_URL to it instead (or REDIS_CLUSTER_NODES when it is a node of a Redis Cluster)'
}

/**
 * Calls `all` once every one of `endpoints` (host:port) has answered as a server of the wrong kind: one
 * such entry among good ones (still starting, say) is not the whole setting, and is retried.
 */
function wrongKindTally (endpoints: Node[], all: () => void): (endpoint: string) => void {
  const listed = new Set(endpoints.map(({ host, port }) => `${host}:${port}`))
  const wrong = new Set<string>()
  return (endpoint) => {
    if (listed.has(endpoint)) wrong.add(endpoint)
    if (wrong.size === listed.size) all()
  }
}

/** An ioredis Cluster, as far as connecting its masters goes. */
export interface IoredisClusterNodes {
  readonly status: string
  nodes: (role: 'master') => Array<{ status: string, connect: () => Promise<void> }>
  on: (event: 'refresh', listener: () => void) => unknown
}

/**
 * ioredis connects to a node at its first command, and without an offline queue (and with nothing
 * sent again) the commands that meet the node still connecting fail: this connects every master as
 * soon as the slot map names it, at boot and after each refresh (a promoted replica). The function
 * returned, called once the cluster is ready, resolves when every master is connected or `withinMs`
 * has passed.
 */
export function keepMastersConnected (cluster: IoredisClusterNodes, withinMs: number): () => Promise<void> {
  const masters = (): ReturnType<IoredisClusterNodes['nodes']> => cluster.nodes('master')
  // Not before the cluster is ready: a node connected during ioredis's own first refresh breaks its boot.
  const connectMasters = (): void => {
    if (cluster.status !== 'ready') return
    for (const node of masters()) if (node.status === 'wait') node.connect().catch(() => {})
  }
  cluster.on('refresh', connectMasters)
  const deadline = Date.now() + withinMs
  return async () => {
    connectMasters()
    while (masters().some((node) => node.status !== 'ready') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  }
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
    // A command whose connection dropped fails (503); sent again, a write could run twice.
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    clusterRetryStrategy: reconnectDelay,
    redisOptions: {
      ...(first.username !== undefined ? { username: first.username } : {}),
      ...(first.password !== undefined ? { password: first.password } : {}),
      ...(first.tls ? { tls: {} } : {}),
      connectTimeout: timeoutMs,
      // A command in flight when its node drops fails (503) instead of being sent again later.
      maxRetriesPerRequest: 0
    }
  })
  const mastersReady = keepMastersConnected(cluster, timeoutMs * 3)
  const ready = new Promise<void>((resolve, reject) => {
    cluster.once('ready', () => { resolve() })
    // ClusterAllFailedError says only 'Failed to refresh slots cache.': the node's own error says why.
    cluster.on('error', (err: Error & { lastNodeError?: Error }) => { lastError = err.lastNodeError?.message ?? err.message })
    // Every node listed is a server of its own: retrying will not make it a cluster.
    const tally = wrongKindTally(nodes, () => { reject(new Error(WRONG_KIND.cluster)) })
    cluster.on('node error', (err: Error, endpoint: string) => { if (/cluster support disabled/i.test(err.message)) tally(endpoint) })
  })
  try {
    await within(ready.then(mastersReady), timeoutMs * 3,
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
  const { Redis } = await import('ioredis')
  let lastError = ''
  const client = new Redis({
    sentinels: sentinels.map(({ host, port }) => ({ host, port })),
    name: config.REDIS_SENTINEL_NAME,
    ...(first.username !== undefined ? { sentinelUsername: first.username } : {}),
    ...(first.password !== undefined ? { sentinelPassword: first.password } : {}),
    ...(config.REDIS_NODE_USERNAME !== undefined ? { username: config.REDIS_NODE_USERNAME } : {}),
    ...(config.REDIS_NODE_PASSWORD !== undefined ? { password: config.REDIS_NODE_PASSWORD } : {}),
    ...(first.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    // Told by the sentinels the moment the master changes, not at the next failed command.
    failoverDetector: true,
    connectTimeout: timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: reconnectDelay,
    sentinelRetryStrategy: reconnectDelay,
    lazyConnect: true
  })
  let notSentinels: (err: Error) => void = () => {}
  client.on('error', (err: Error) => { lastError = err.message })
  // Every sentinel listed is a Redis server (no SENTINEL command): retrying will not make it one.
  // ioredis tells each sentinel's failure as 'failed to connect to sentinel <host:port> because <error>'.
  const tally = wrongKindTally(sentinels, () => { notSentinels(new Error(WRONG_KIND.sentinel)) })
  client.on('sentinelError', (err: Error) => {
    const failed = /^failed to connect to sentinel (\S+) because ERR unknown command .?sentinel/i.exec(err.message)
    if (failed !== null) tally(failed[1] as string)
  })
  // ioredis rejects with only 'Connection is closed.' when the master found refuses the connection or
  // its login (a wrong REDIS_NODE_PASSWORD): its 'error' event said why.
  const connected = Promise.race([client.connect(), new Promise<never>((_resolve, reject) => { notSentinels = reject })]).catch((err: Error) => {
    if (err.message === WRONG_KIND.sentinel) throw err
    const why = lastError === '' ? err.message : lastError
    const hint = /^(NOAUTH|WRONGPASS)\b/.test(why) ? ': check REDIS_NODE_USERNAME and REDIS_NODE_PASSWORD' : ''
    throw new Error(`REDIS_SENTINELS: cannot connect to master '${config.REDIS_SENTINEL_NAME}' (${why})${hint}`)
  })
  try {
    await within(connected, timeoutMs * 3,
      () => `REDIS_SENTINELS: no master '${config.REDIS_SENTINEL_NAME}' reachable within ${timeoutMs * 3} ms${lastError === '' ? '' : `; last error: ${lastError}`}`)
    return client
  } catch (err) {
    client.disconnect()
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
