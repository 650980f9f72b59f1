// How the store talks to Redis: one function that sends a command and returns its reply (strings,
// numbers, null and arrays of them), over whichever client the gateway was given.
//
// The gateway's own client (REDIS_URL) is node-redis (@redis/client): in `npm run bench:micro` a
// command costs ~9 µs of client CPU there against ~21 µs in ioredis, which builds a Command, a
// Pipeline and a promise chain per command; in the gateway that was a quarter of a refresh
// (BENCHMARKS.md). A host app may pass its own client instead: an ioredis client or cluster (what
// @fastify/redis decorates), or a node-redis client, cluster or sentinel. Only the shapes below are
// used; ioredis is never loaded by the gateway itself.
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient, RESP_TYPES } from '@redis/client'
import { slotMapHealer } from './redis-cluster-heal.js'

/** What an ioredis `Redis` or `Cluster` offers that the store uses. */
export interface IoredisLike {
  call: (command: string, ...args: string[]) => Promise<unknown>
  defineCommand: (...args: never[]) => unknown
  disconnect: () => void
}

// node-redis: replies are asked for as RESP2 gives them (strings, not Buffers; a hash's fields as a
// flat array, not a Map or an object), whatever the client's own commandOptions or protocol (RESP3,
// node-redis 6's default) say.
interface NodeRedisCommandOptions { typeMapping: Record<number, unknown> }

/** What a node-redis client offers that the store uses (`createClient()` of redis or @redis/client). */
export interface NodeRedisClientLike {
  sendCommand: (args: string[], options?: NodeRedisCommandOptions) => Promise<unknown>
  destroy: () => void
  readonly isOpen: boolean
}

/** What a node-redis cluster offers that the store uses (`createCluster()`). */
export interface NodeRedisClusterLike {
  sendCommand: (firstKey: string | undefined, isReadonly: boolean | undefined, args: string[], options?: NodeRedisCommandOptions) => Promise<unknown>
  destroy: () => void
  readonly isOpen: boolean
  readonly masters: unknown
}

/** What a node-redis sentinel offers that the store uses (`createSentinel()`). */
export interface NodeRedisSentinelLike {
  sendCommand: (isReadonly: boolean | undefined, args: string[], options?: NodeRedisCommandOptions) => Promise<unknown>
  destroy: () => void
  readonly isOpen: boolean
  getSentinelNode: (...args: never[]) => unknown
}

export type RedisClient = IoredisLike | NodeRedisClientLike | NodeRedisClusterLike | NodeRedisSentinelLike

/** Whether `client` is an ioredis Cluster (not a single ioredis client). */
export const isIoredisCluster = (client: object): boolean => 'defineCommand' in client && 'slots' in client && typeof (client as { nodes?: unknown }).nodes === 'function'

/** Sends one command (all arguments strings); `key` routes it in a cluster. */
export type SendCommand = (key: string | undefined, args: readonly string[]) => Promise<unknown>

const STRINGS: NodeRedisCommandOptions = { typeMapping: { [RESP_TYPES.MAP]: Array, [RESP_TYPES.SET]: Array } }

/**
 * Which kind of client `client` is, by its shape; null for anything else, a node-redis client in
 * legacy mode (`.legacy()`, v4's legacyMode: callbacks, no promises) and node-redis 4 (no destroy) included.
 */
export function clientKind (client: unknown): 'ioredis' | 'node-redis' | 'node-redis-cluster' | 'node-redis-sentinel' | null {
  if (typeof client !== 'object' || client === null) return null
  if ('defineCommand' in client && typeof (client as IoredisLike).call === 'function') return 'ioredis'
  if (!('sendCommand' in client) || typeof client.sendCommand !== 'function' || !('isOpen' in client)) return null
  if ('masters' in client) return 'node-redis-cluster'
  if ('getSentinelNode' in client) return 'node-redis-sentinel'
  return 'destroy' in client ? 'node-redis' : null
}

/** The way to send commands through `client`, found by its shape (clientKind); anything else is refused. */
export function sendCommandOf (client: RedisClient): SendCommand {
  // node-redis reads a command's arguments and never writes them (some are frozen: redis-access-check.ts).
  switch (clientKind(client)) {
    case 'ioredis': return async (_key, args) => await (client as IoredisLike).call(...(args as [string, ...string[]]))
    case 'node-redis-cluster': {
      const cluster = client as NodeRedisClusterLike
      const heal = slotMapHealer(cluster)
      return async (key, args) => await cluster.sendCommand(key, false, args as string[], STRINGS).catch((err: unknown) => { heal?.(err); throw err })
    }
    case 'node-redis-sentinel': return async (_key, args) => await (client as NodeRedisSentinelLike).sendCommand(false, args as string[], STRINGS)
    case 'node-redis': return async (_key, args) => await (client as NodeRedisClientLike).sendCommand(args as string[], STRINGS)
    case null: throw new Error('redis: expected an ioredis client or cluster, or a node-redis client, cluster or sentinel (not in legacy mode)')
  }
}

/**
 * Sends a command without keys (FUNCTION LOAD) to every master of a cluster client (its slot map's:
 * an ioredis Cluster would route it to any node, a node-redis cluster by `key` to one), else by `send`.
 */
export function toMastersOf (client: RedisClient, send: SendCommand): SendCommand {
  if (isIoredisCluster(client)) {
    const cluster = client as unknown as { nodes: (role: 'master') => IoredisLike[] }
    return async (_key, args) => await Promise.all(cluster.nodes('master').map(async (node) => await node.call(...(args as [string, ...string[]]))))
  }
  const nodeRedis = client as { masters?: unknown, nodeClient?: (node: never) => Promise<NodeRedisClientLike> }
  if (Array.isArray(nodeRedis.masters) && typeof nodeRedis.nodeClient === 'function') {
    const { nodeClient } = nodeRedis
    return async (_key, args) => await Promise.all((nodeRedis.masters as never[]).map(async (master) =>
      await (await nodeClient.call(client, master)).sendCommand(args as string[], STRINGS)))
  }
  return send
}

export interface ConnectOptions {
  url: string
  timeoutMs: number
}

/** How long to wait before reconnect attempt `retries`: growing, capped at 2 s, jittered; endless. */
export const reconnectDelay = (retries: number): number => Math.min((retries + 1) * 100, 2000) + Math.floor(Math.random() * 100)

/** `promise`, or a rejection with `message()` after `ms` if it has not settled by then. */
export async function within<T> (promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(message())) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

// Commands waiting for a reply on the gateway's own connection. A Redis that hangs (stopped, a
// network partition) answers nothing while every request still sends its command; past this many
// the client refuses new ones at once instead of holding them all in memory.
const MAX_QUEUED_COMMANDS = 10_000

/**
 * A client tuned for a login gateway: no offline queue, so an outage fails requests at once
 * instead of queueing them (commands in flight when the connection drops fail too), a bounded
 * queue while Redis hangs, and endless reconnects with a capped, jittered delay, so it recovers by
 * itself. Resolves once connected; rejects (and closes the client) if Redis does not answer in
 * time. Error messages never carry the URL, and errors carry no cause that could.
 */
export async function connectRedis (opts: ConnectOptions): Promise<NodeRedisClientLike> {
  let client: ReturnType<typeof createClient> | undefined
  let lastError = ''
  try {
    client = createClient({
      url: opts.url,
      disableOfflineQueue: true,
      commandsQueueMaxLength: MAX_QUEUED_COMMANDS,
      socket: {
        connectTimeout: opts.timeoutMs,
        reconnectStrategy: reconnectDelay
      }
    })
    // Without a listener an 'error' event would end the process; the store reports outages per request.
    client.on('error', (err: Error) => { lastError = err.message })
    // node-redis keeps retrying a first connection that fails: this is what gives up.
    await within(client.connect(), opts.timeoutMs * 3, () => `no answer within ${opts.timeoutMs * 3} ms${lastError === '' ? '' : `; last error: ${lastError}`}`)
    return client
  } catch (err) {
    if (client?.isOpen === true) client.destroy()
    // A URL that does not parse is reported without its text (Node's error keeps it in `input`).
    const reason = (err as { code?: string }).code === 'ERR_INVALID_URL'
      ? 'not a valid URL; percent-encode special characters in the password'
      : (err as Error).message
    throw new Error(`REDIS_URL: cannot connect to Redis (${reason})`)
  }
}

/**
 * Whether a client passed in queues commands while disconnected (ioredis' and @fastify/redis'
 * default; node-redis's unless disableOfflineQueue). Requests still fail after STORE_TIMEOUT_MS,
 * but their queued commands run when Redis returns, late: a logout or a code claim then lands
 * after its client was told 503. Undefined when the shape does not say.
 */
export function hasOfflineQueue (client: RedisClient): boolean | undefined {
  type Options = { enableOfflineQueue?: boolean, disableOfflineQueue?: boolean } | undefined
  // A node-redis cluster keeps its options in `_options`, its nodes' in `defaults`.
  const cluster = (client as { _options?: { defaults?: Options } })._options
  const options = 'masters' in client ? cluster?.defaults ?? {} : (client as { options?: Options }).options
  if (options === undefined) return undefined
  if ('defineCommand' in client) return options.enableOfflineQueue !== false
  return options.disableOfflineQueue !== true
}

/**
 * Drops the connection of a client the store owns, at once: commands still waiting fail. (node-redis's
 * close() would wait for their replies, forever when Redis hangs, and marks the client closed at once,
 * so it could not be destroyed after.)
 */
export function disconnectClient (client: RedisClient): void {
  if ('defineCommand' in client) client.disconnect()
  else if (client.isOpen) client.destroy()
}

type Readiness = { state: 'ready' | 'pending' | 'closed' | 'not-connected', status: string }

/**
 * Where a client passed in is. An ioredis client or Cluster made with lazyConnect (status `wait`) is
 * connected here, as its first command would connect it.
 */
function readinessOf (client: RedisClient): Readiness {
  if ('defineCommand' in client) {
    const ioredis = client as unknown as { status?: string, connect?: () => Promise<void> }
    const status = ioredis.status ?? 'ready' // a wrapper that does not say
    if (status === 'wait') ioredis.connect?.().catch(() => {}) // its failures are its 'error' events
    if (status === 'end' || status === 'disconnecting') return { state: 'closed', status }
    return { state: status === 'ready' ? 'ready' : 'pending', status }
  }
  if (!client.isOpen) return { state: 'not-connected', status: 'closed' }
  // A node-redis cluster is ready once it knows its masters; a client or sentinel says so.
  const ready = 'masters' in client ? Array.isArray(client.masters) && client.masters.length > 0 : (client as { isReady?: boolean }).isReady !== false
  return { state: ready ? 'ready' : 'pending', status: ready ? 'ready' : 'connecting' }
}

/**
 * Resolves once a client passed in takes commands, within `withinMs`: a fresh client is still
 * connecting, and one without an offline queue (as docs/embedding.md advises) fails every command
 * until it is ready. A node-redis client must have been connected by its owner: the gateway never
 * opens (nor closes) a client it is given, whose life is the host's. Polled, not awaited as an
 * event: a node-redis sentinel or cluster emits no 'ready', and one loop serves every kind.
 */
export async function clientReady (client: RedisClient, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs
  for (;;) {
    const { state, status } = readinessOf(client)
    if (state === 'ready') return
    if (state === 'not-connected') throw new Error('the node-redis client passed in is not connected: call `await client.connect()` before registering the gateway')
    if (state === 'closed') throw new Error(`the Redis client passed in is closed (its status: ${status}): pass an open one`)
    if (Date.now() >= deadline) throw new Error(`the Redis client passed in is not ready within ${withinMs} ms (its status: ${status}): check that Redis is up and the client's address and credentials`)
    await sleep(10)
  }
}
