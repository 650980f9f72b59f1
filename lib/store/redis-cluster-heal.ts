// A node-redis cluster client passed in, kept on the living masters. A master killed outright answers
// nothing, so no MOVED ever tells the client that its replica took over: node-redis 5 keeps sending
// that master's slots to the dead address until a restart (redis/node-redis#2806); 6 reloads its slot
// map 5 s after a node's first reconnection attempt (lib/store/redis-recovery.ts). Here, a command
// that fails for want of a connection (not an error Redis answered) makes the store ask the client to
// reload its slot map, at most once a second, starting from a master still connected (the client
// falls back to its root nodes). Both versions have that reload, `_slots.rediscover()`, outside their
// public API: a client without it is left alone, and warned about at boot (redis-recovery.ts).
// A node that hangs without closing its connection fails commands only at the store's deadline,
// which never reaches the client: there, node-redis 6's own reload is what finds the promotion.

interface NodeClient { readonly isReady?: boolean, readonly options?: unknown }

interface ClusterInternals {
  _slots?: { rediscover?: (startWith: NodeClient) => Promise<unknown> }
  masters: Array<{ client?: NodeClient }>
}

/** Whether `err` is an answer of Redis (node-redis's ErrorReply, of whichever copy of the library). */
function isReply (err: unknown): boolean {
  for (let proto = err === null || typeof err !== 'object' ? null : Object.getPrototypeOf(err) as object | null; proto !== null && proto !== Error.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    if ((proto as { constructor?: { name?: string } }).constructor?.name === 'ErrorReply') return true
  }
  return false
}

/** Whether `client`, a node-redis cluster, can be asked to reload its slot map. */
export const canReloadSlots = (client: object): boolean => typeof (client as ClusterInternals)._slots?.rediscover === 'function'

/**
 * What a failed command of a node-redis cluster client is told to: `(err) => void`, which reloads the
 * slot map after a connection failure, at most every `everyMs`. Null for a client that cannot.
 */
export function slotMapHealer (client: object, everyMs = 1000): ((err: unknown) => void) | null {
  if (!canReloadSlots(client)) return null
  const cluster = client as ClusterInternals
  let last = 0
  return (err) => {
    const now = Date.now()
    if (isReply(err) || now - last < everyMs) return
    last = now
    const start = cluster.masters.find((master) => master.client?.isReady === true)?.client ?? cluster.masters[0]?.client
    if (start !== undefined) cluster._slots?.rediscover?.(start).catch(() => {})
  }
}
