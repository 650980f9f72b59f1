// Durability as an option (REDIS_WAIT_REPLICAS): the writes that open a session, rotate a refresh
// token, revoke or change a user (redis-context.ts's `durably`) wait until that many replicas have them
// (WAIT), at most REDIS_WAIT_TIMEOUT_MS, before the client is answered. WAIT counts the replicas that acknowledged every earlier write of the connection
// it is sent on, so it goes on the connection that took the write: the durable writes' own
// (redis-lane.ts; a node-redis Sentinel client's single master connection when it cannot make one), or
// on an ioredis Cluster that connection's master serving the key's slot. A node-redis cluster client
// routes a keyless command to any node and exposes no node connection to send it on: refused.
//
// Writes share WAITs: one is sent per turn of the event loop for every write answered before it (all
// of them earlier on that connection), so a master without its replica costs each write at most two
// timeouts, not a queue of them.
import calculateSlot from 'cluster-key-slot'
import { isIoredisCluster, type RedisClient, type SendCommand } from './redis-client.js'
import { throttledWarning } from '../throttled-warning.js'

export interface WaitOptions {
  replicas: number
  timeoutMs: number
  /** Told when fewer replicas than asked acknowledged a write in time: the write stands. */
  onShort?: (acked: number, wanted: number) => void
}

/** An ioredis Cluster, as far as finding the master connection of a slot goes. */
interface IoredisClusterLike {
  slots: string[][]
  nodes: (role: 'master') => Array<{ options: { host?: string, port?: number }, call: (...args: string[]) => Promise<unknown> }>
}

/** Why `client` cannot wait for replicas, or null when it can. */
export function cannotWait (client: RedisClient): string | null {
  if ('masters' in client) {
    return 'REDIS_WAIT_REPLICAS needs WAIT on the master that took each write, which a node-redis cluster client cannot address: pass an ioredis Cluster, or let the gateway connect with REDIS_CLUSTER_NODES'
  }
  return null
}

/** One WAIT sent for every write answered since the last one was sent. */
function sharedWait (send: () => Promise<unknown>): () => Promise<number> {
  let next: Promise<number> | undefined
  return async () => {
    next ??= new Promise<void>((resolve) => { setImmediate(resolve) }).then(async () => {
      next = undefined
      return Number(await send())
    })
    return await next
  }
}

/**
 * What makes a write durable: `settle(key)` resolves, after the write of `key` was answered, with how
 * many replicas acknowledged it.
 */
export function replicaWaiter (client: RedisClient, send: SendCommand, opts: WaitOptions): (key: string) => Promise<number> {
  const refusal = cannotWait(client)
  if (refusal !== null) throw new Error(refusal)
  const wait = ['WAIT', String(opts.replicas), String(opts.timeoutMs)]
  const settled = (acked: number): number => {
    if (acked < opts.replicas) opts.onShort?.(acked, opts.replicas)
    return acked
  }
  if (!isIoredisCluster(client)) {
    const shared = sharedWait(async () => await send(undefined, wait))
    return async () => settled(await shared())
  }
  const cluster = client as unknown as IoredisClusterLike
  const perNode = new Map<string, () => Promise<number>>()
  return async (key) => {
    const nodeKey = cluster.slots[calculateSlot(key)]?.[0]
    const node = cluster.nodes('master').find((n) => `${n.options.host ?? ''}:${n.options.port ?? ''}` === nodeKey)
    // The slot map changed under the write (a failover): that write's master is not known here.
    if (nodeKey === undefined || node === undefined) return settled(0)
    let shared = perNode.get(nodeKey)
    if (shared === undefined) perNode.set(nodeKey, (shared = sharedWait(async () => await node.call(...wait as [string, ...string[]]))))
    return settled(await shared())
  }
}

/** A warning at most every `everyMs`, with how many writes fell short since the last one. */
export function shortWarning (warn: (msg: string) => void, everyMs = 10_000): (acked: number, wanted: number) => void {
  const throttled = throttledWarning(everyMs, (count, acked: number, wanted: number) => {
    warn(`REDIS_WAIT_REPLICAS: ${count} write(s) answered with fewer replicas than asked (last: ${acked} of ${wanted} within REDIS_WAIT_TIMEOUT_MS); they stand on the master only, and a failover before the replicas catch up would lose them`)
  })
  return (acked, wanted) => { throttled(1, acked, wanted) }
}
