// The durable writes' own connection (REDIS_WAIT_REPLICAS). WAIT blocks the connection it is sent on
// until the replicas acknowledge or its timeout passes, and it must go on the connection that took
// the write. Sent on the store's only connection, a slow or missing replica would hold up every
// command queued behind it: each authenticated request's check, for up to REDIS_WAIT_TIMEOUT_MS.
// So the durable writes (open a session, rotate, revoke, an operator's change) and their WAITs go
// on a second connection of their own, made here from the client the store was given (`duplicate()`: the same
// server or cluster, options and credentials) and closed with the store, whoever owns the first.
// Writes still share WAITs there (redis-wait.ts): while one WAIT waits, the writes behind it queue on
// that connection, and the next WAIT covers them all.
//
// A node-redis Sentinel client has no duplicate(): only leases from its pool of master connections,
// which with the default pool of one is the connection everyone uses. Its durable writes stay on it
// (each WAIT then delays that client's other commands, at most REDIS_WAIT_TIMEOUT_MS), documented in
// docs/operations.md; the gateway's own REDIS_SENTINELS client (ioredis) and ioredis clients get a lane.
import { disconnectClient, isIoredisCluster, sendCommandOf, within, type NodeRedisClientLike, type RedisClient, type SendCommand } from './redis-client.js'
import { keepMastersConnected, type IoredisClusterNodes } from './redis-topology.js'

export interface Lane {
  client: RedisClient
  send: SendCommand
  /** Resolves once the lane is connected (and, in a cluster, every master); rejects if not in time. */
  ready: Promise<void>
  close: () => void
}

interface IoredisDuplicable {
  status: string
  duplicate: () => IoredisDuplicable & RedisClient
  connect: () => Promise<void>
  once: (event: 'ready', listener: () => void) => unknown
  on: (event: string, listener: (...args: never[]) => void) => unknown
}

interface NodeRedisDuplicable extends NodeRedisClientLike {
  duplicate: () => NodeRedisDuplicable
  connect: () => Promise<unknown>
  on: (event: 'error', listener: (err: Error) => void) => unknown
}

async function ioredisReady (client: IoredisDuplicable): Promise<void> {
  const ready = client.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => { client.once('ready', resolve) })
  // A client made with lazyConnect waits for a command or connect(); the others are connecting already.
  if (client.status === 'wait') await client.connect()
  await ready
}

/** A second connection like `client`'s, or null for a client that cannot make one (see above). */
function duplicateOf (client: RedisClient, timeoutMs: number): { client: RedisClient, connected: Promise<void> } | null {
  if ('defineCommand' in client && 'duplicate' in client) {
    const lane = (client as unknown as IoredisDuplicable).duplicate()
    // Without a listener ioredis prints every connection error; a failing lane fails its writes (503).
    lane.on('error', () => {})
    const connected = isIoredisCluster(lane)
      ? ioredisReady(lane).then(keepMastersConnected(lane as unknown as IoredisClusterNodes, timeoutMs))
      : ioredisReady(lane)
    return { client: lane, connected }
  }
  if ('getSentinelNode' in client || 'masters' in client || !('duplicate' in client)) return null
  const lane = (client as NodeRedisDuplicable).duplicate()
  lane.on('error', () => {})
  return { client: lane, connected: lane.connect().then(() => {}) }
}

/** The durable writes' own connection, connecting; null when `client` cannot make one. */
export function openLane (client: RedisClient, timeoutMs: number): Lane | null {
  const made = duplicateOf(client, timeoutMs)
  if (made === null) return null
  const ready = within(made.connected, timeoutMs * 3, () => `the connection for durable writes (REDIS_WAIT_REPLICAS) did not connect within ${timeoutMs * 3} ms`)
  // Nobody may be waiting yet: a failure is reported by the first write or the boot's ping.
  ready.catch(() => {})
  return { client: made.client, send: sendCommandOf(made.client), ready, close: () => { disconnectClient(made.client) } }
}
