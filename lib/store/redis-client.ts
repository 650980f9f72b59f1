// How the store talks to Redis: one function that sends a command and returns its RESP2 reply,
// over whichever client the gateway was given.
//
// The gateway's own client (REDIS_URL) is node-redis (@redis/client): in `npm run bench:micro` a
// command costs ~5 µs of client CPU there against ~14 µs in ioredis, which builds a Command, a
// Pipeline and a promise chain per command; in the gateway that was a quarter of a refresh
// (BENCHMARKS.md). A host app may pass its own client instead: an ioredis client or cluster (what
// @fastify/redis decorates), or a node-redis client or cluster. Only the shapes below are used, so
// neither library is needed at run time unless the gateway connects by itself.
import { createClient } from '@redis/client'

/** What an ioredis `Redis` or `Cluster` offers that the store uses. */
export interface IoredisLike {
  call: (command: string, ...args: string[]) => Promise<unknown>
  defineCommand: (...args: never[]) => unknown
  quit: () => Promise<unknown>
  disconnect: () => void
}

/** What a node-redis client offers that the store uses (`createClient()` of redis or @redis/client). */
export interface NodeRedisClientLike {
  sendCommand: (args: string[]) => Promise<unknown>
  close: () => Promise<void>
  destroy: () => void
  readonly isOpen: boolean
}

/** What a node-redis cluster offers that the store uses (`createCluster()`). */
export interface NodeRedisClusterLike {
  sendCommand: (firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]) => Promise<unknown>
  close: () => Promise<void>
  destroy: () => void
  readonly isOpen: boolean
  readonly masters: unknown
}

export type RedisClient = IoredisLike | NodeRedisClientLike | NodeRedisClusterLike

/** Sends one command (all arguments strings); `key` routes it in a cluster. */
export type SendCommand = (key: string | undefined, args: string[]) => Promise<unknown>

export function sendCommandOf (client: RedisClient): SendCommand {
  if ('defineCommand' in client) {
    return async (_key, args) => await client.call(...(args as [string, ...string[]]))
  }
  if ('masters' in client) {
    return async (key, args) => await client.sendCommand(key, false, args)
  }
  if (typeof client.sendCommand === 'function') {
    return async (_key, args) => await client.sendCommand(args)
  }
  throw new Error('redis: expected an ioredis or node-redis client or cluster')
}

export interface ConnectOptions {
  url: string
  timeoutMs: number
}

/**
 * A client tuned for a login gateway: no offline queue, so an outage fails requests at once
 * instead of queueing them (commands in flight when the connection drops fail too), and endless
 * reconnects with a capped delay, so it recovers by itself. Resolves once connected; rejects (and
 * closes the client) if Redis does not answer in time. Error messages never carry the URL.
 */
export async function connectRedis (opts: ConnectOptions): Promise<NodeRedisClientLike> {
  const client = createClient({
    url: opts.url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: opts.timeoutMs,
      reconnectStrategy: (retries: number) => Math.min((retries + 1) * 100, 2000)
    }
  })
  // Without a listener an 'error' event would end the process; the store reports outages per request.
  let lastError = ''
  client.on('error', (err: Error) => { lastError = err.message })
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.connect(),
      new Promise((_resolve, reject) => {
        // node-redis keeps retrying a first connection that fails: this is what gives up.
        timer = setTimeout(() => reject(new Error(`no answer within ${opts.timeoutMs * 3} ms${lastError === '' ? '' : `; last error: ${lastError}`}`)), opts.timeoutMs * 3)
      })
    ])
    return client as unknown as NodeRedisClientLike
  } catch (err) {
    if (client.isOpen) client.destroy()
    throw new Error(`REDIS_URL: cannot connect to Redis (${(err as Error).message})`, { cause: err })
  } finally {
    clearTimeout(timer)
  }
}

/** Closes a client: waits for replies in flight up to `timeoutMs` (a dead server never sends them), then drops the socket. */
export async function closeClient (client: RedisClient, timeoutMs: number): Promise<void> {
  const ioredis = 'defineCommand' in client
  if (!ioredis && !client.isOpen) return
  const graceful = ioredis ? client.quit() : client.close()
  await Promise.race([graceful.catch(() => {}), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())])
  if (ioredis) client.disconnect()
  else if (client.isOpen) client.destroy()
}
