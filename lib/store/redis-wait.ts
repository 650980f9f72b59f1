// Durability as an option (REDIS_WAIT_REPLICAS): the writes that open a session, rotate a refresh
// token, revoke or change a user (redis-context.ts's `durably`) wait until that many replicas have
// them (WAIT), at most REDIS_WAIT_TIMEOUT_MS, before the client is answered. WAIT counts the replicas
// that acknowledged every earlier write of the connection it is sent on, so it goes on the
// connection that took the write: the durable writes' own
// (redis-lane.ts; a node-redis Sentinel client's single master connection when it cannot make one), or
// on an ioredis Cluster that connection's master serving the key's slot. A node-redis cluster client
// routes a keyless command to any node and exposes no node connection to send it on: refused.
//
// Writes share WAITs: one at a time per connection, sent for every write answered before it (all of
// them earlier on that connection), so a master without its replica costs each write about two
// timeouts, not a queue of them (sharedWait).
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

/** The durable writes in flight (sent, not answered), so that a WAIT can be held for those sent before the last one returned. */
function writesInFlight () {
  let started = 0
  // Ids in the order they started (a Set iterates in insertion order): the first is the oldest.
  const open = new Set<number>()
  const waiting = new Set<{ upTo: number, resolve: () => void }>()
  const done = (upTo: number): boolean => {
    const oldest = open.values().next()
    return oldest.done === true || oldest.value > upTo
  }
  const forget = (id: number): void => {
    open.delete(id)
    for (const w of waiting) if (done(w.upTo)) w.resolve()
  }
  return {
    track<T>(write: Promise<T>): Promise<T> {
      const id = ++started
      open.add(id)
      write.then(() => { forget(id) }, () => { forget(id) })
      return write
    },
    /** Resolves once every write started before this call is answered, or after `ms` (one that hangs holds no WAIT for long). */
    async answered (ms: number): Promise<void> {
      const upTo = started
      if (done(upTo)) return
      await new Promise<void>((resolve) => {
        const entry = { upTo, resolve: () => { clearTimeout(timer); waiting.delete(entry); resolve() } }
        const timer = setTimeout(entry.resolve, ms)
        waiting.add(entry)
      })
    }
  }
}

/**
 * WAITs on one connection, one at a time, each shared by every write answered before it is sent.
 * A WAIT blocks its connection: the writes sent meanwhile queue behind it and are answered as it
 * returns. The next is sent once those are answered and a turn of the event loop has passed, so they
 * share it, not one each: a write waits at most for the WAIT it queued behind and the next one,
 * about two timeouts (and `timeoutMs` more when a write before it hangs).
 */
function sharedWait (send: () => Promise<unknown>, writes: ReturnType<typeof writesInFlight>, timeoutMs: number): () => Promise<number> {
  let next: Promise<number> | undefined
  let last: Promise<unknown> = Promise.resolve()
  return async () => {
    next ??= (async () => {
      await last
      await writes.answered(timeoutMs)
      await new Promise<void>((resolve) => { setImmediate(resolve) })
      next = undefined
      const sent = send()
      last = sent.catch(() => {})
      return Number(await sent)
    })()
    return await next
  }
}

/**
 * What makes a write durable: `track` the write as it is sent, then `settle(key)`, once it was
 * answered, resolves with how many replicas acknowledged it.
 */
export function replicaWaiter (client: RedisClient, send: SendCommand, opts: WaitOptions): { track: <T>(write: Promise<T>) => Promise<T>, settle: (key: string) => Promise<number> } {
  const refusal = cannotWait(client)
  if (refusal !== null) throw new Error(refusal)
  const wait = ['WAIT', String(opts.replicas), String(opts.timeoutMs)]
  const writes = writesInFlight()
  const { track } = writes
  const settled = (acked: number): number => {
    if (acked < opts.replicas) opts.onShort?.(acked, opts.replicas)
    return acked
  }
  if (!isIoredisCluster(client)) {
    const shared = sharedWait(async () => await send(undefined, wait), writes, opts.timeoutMs)
    return { track, settle: async () => settled(await shared()) }
  }
  const cluster = client as unknown as IoredisClusterLike
  const perNode = new Map<string, () => Promise<number>>()
  return {
    track,
    settle: async (key) => {
      const nodeKey = cluster.slots[calculateSlot(key)]?.[0]
      const node = cluster.nodes('master').find((n) => `${n.options.host ?? ''}:${n.options.port ?? ''}` === nodeKey)
      // The slot map changed under the write (a failover): that write's master is not known here.
      if (nodeKey === undefined || node === undefined) return settled(0)
      let shared = perNode.get(nodeKey)
      if (shared === undefined) perNode.set(nodeKey, (shared = sharedWait(async () => await node.call(...wait as [string, ...string[]]), writes, opts.timeoutMs)))
      return settled(await shared())
    }
  }
}

/** A warning at most every `everyMs`, with how many writes fell short since the last one. */
export function shortWarning (warn: (msg: string) => void, everyMs = 10_000): (acked: number, wanted: number) => void {
  const throttled = throttledWarning(everyMs, (count, acked: number, wanted: number) => {
    warn(`REDIS_WAIT_REPLICAS: ${count} write(s) answered with fewer replicas than asked (last: ${acked} of ${wanted} within REDIS_WAIT_TIMEOUT_MS); they stand on the master only, and a failover before the replicas catch up would lose them`)
  })
  return (acked, wanted) => { throttled(1, acked, wanted) }
}
