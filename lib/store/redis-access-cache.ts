// The access check's read copy (ACCESS_CHECK=tracked): checkAccess's HMGET answered from memory,
// kept coherent by Redis itself (server-assisted client-side caching, CLIENT TRACKING).
//
// The reads go on a connection of their own, a duplicate() of the store's node-redis client speaking
// RESP3 with tracking on: Redis remembers each key read there and pushes an invalidation on that same
// connection the moment anyone changes the key (a script of any gateway, an admin, an expiry). Being on
// one connection, a read's reply and the invalidation of a later change arrive in order; a read with an
// invalidation of its key between send and reply is not kept ("invalidated while fetching"). Not
// node-redis's own clientSideCache: it cannot take the store's reply options, clears its map on a
// disconnect without marking a read in flight, which is then kept though its key is no longer tracked,
// and has no bound on a silent connection (below).
//
// What an entry may be used for, checked at every hit:
// - the connection that read it is still the one up (socketEpoch): nothing survives a disconnect;
// - a reply on that connection came within LEASE_MS of being sent: every invalidation Redis sent
//   before it has arrived, so a connection cut off without a close (a partition) stops serving hits
//   LEASE_MS after its last answer. Hits ask for a PING every HEARTBEAT_MS; an idle gateway sends none.
// This gateway's own writes drop the key's entries when sent and when answered (`wrote`): its next
// request sees them without waiting for the invalidation, which travels on the other connection.
// Entries are grouped by user key, at most `maxEntries` in all; about the least recently used go first.
import { within } from './redis-client.js'
import { boundedReads, type Reply } from './redis-access-reads.js'

const HEARTBEAT_MS = 100
const LEASE_MS = 500

/** The connection the cache reads on: a node-redis client (5 or 6) made with RESP 3 and emitInvalidate. */
interface TrackingConnection {
  readonly isReady: boolean
  readonly isOpen: boolean
  readonly socketEpoch: number
  sendCommand: (args: readonly string[]) => Promise<unknown>
  on: (event: 'invalidate' | 'error' | 'end' | 'ready', listener: (key: unknown) => void) => unknown
  connect: () => Promise<unknown>
  destroy: () => void
}

interface Duplicable {
  duplicate: (overrides: Record<string, unknown>) => TrackingConnection
}

/** Why a client cannot have the cache (it then runs strict), or null when it can. */
export function uncacheableReason (client: object): string | null {
  if ('defineCommand' in client) return 'ioredis clients (and the gateway\'s Cluster and Sentinel clients) have no RESP3 invalidation pushes'
  if ('masters' in client) return 'a node-redis cluster client has no tracked connection per node'
  if ('getSentinelNode' in client) return 'a node-redis sentinel client cannot open a connection of its own'
  if (typeof (client as Partial<Duplicable>).duplicate !== 'function') return 'the client cannot open a second connection (duplicate())'
  return null
}

export interface AccessCacheOptions {
  maxEntries: number
  timeoutMs: number
}

export type AccessCache = Awaited<ReturnType<typeof openAccessCache>>

/**
 * An HMGET the read copy answers: the key, an id of the fields (the same for the same fields of that
 * key), and the command. A caller builds it once and presents the same object again: its strings are
 * then hashed once, not on every lookup.
 */
export interface CachedRead { readonly key: string, readonly id: string, readonly args: readonly string[] }
export type CacheOutcome = 'hit' | 'miss' | 'uncached'

/**
 * The read copy ACCESS_CHECK asks for on `client`: none when strict, or when the client cannot be
 * tracked (then `strictBecause` says why).
 */
export async function accessCacheFor (client: object, config: { ACCESS_CHECK: 'tracked' | 'strict', ACCESS_CACHE_MAX_ENTRIES: number, STORE_TIMEOUT_MS: number }): Promise<{ accessCache?: AccessCache, strictBecause?: string }> {
  if (config.ACCESS_CHECK === 'strict') return {}
  const strictBecause = uncacheableReason(client)
  if (strictBecause !== null) return { strictBecause }
  return { accessCache: await openAccessCache(client, { maxEntries: config.ACCESS_CACHE_MAX_ENTRIES, timeoutMs: config.STORE_TIMEOUT_MS }) }
}

/**
 * Opens the tracked connection from `client` (a node-redis client: uncacheableReason gives null) and
 * resolves once it is up; rejects, naming ACCESS_CHECK, when Redis refuses RESP3 or tracking.
 */
export async function openAccessCache (client: object, opts: AccessCacheOptions) {
  const conn = (client as Duplicable).duplicate({
    RESP: 3,
    emitInvalidate: true,
    clientSideCache: undefined,
    // Whatever the host's client does: fail at once while disconnected, replies as plain strings.
    disableOfflineQueue: true,
    commandOptions: undefined,
    maintNotifications: 'disabled',
    pingInterval: undefined
  })
  // The reads fail with the store's 503, and the cache is flushed (below); at boot, the last error says
  // why the connection did not open (node-redis retries a refused HELLO rather than reject).
  let lastError: Error | undefined
  conn.on('error', (err) => { lastError = err as Error })
  try {
    await within(conn.connect(), opts.timeoutMs * 3, () => `no answer within ${opts.timeoutMs * 3} ms`)
  } catch (err) {
    if (conn.isOpen) conn.destroy()
    const why = lastError?.message ?? (err as Error).message
    // Credentials refused are REDIS_URL's fault, not tracking's: the store's connection fails the same.
    if (/^(NOAUTH|WRONGPASS)\b/.test(why)) throw new Error(`Redis refused the connection's credentials (${why}): check the user and password in REDIS_URL`)
    throw new Error(`ACCESS_CHECK=tracked: cannot open the tracked connection (RESP3, CLIENT TRACKING: Redis 6 or later); set ACCESS_CHECK=strict to read Redis on every request (${why})`)
  }
  return accessCache(conn, opts.maxEntries)
}

/**
 * Keys watched for changes (a web QR login's, redis-handoff.ts): each is read on the tracked connection
 * (EXISTS), so that Redis pushes an invalidation at its next change, made by any gateway; the watchers
 * are then told, once the key is read again (armed for the change after: a change before that is seen
 * by what they read when told). After a reconnection, or when Redis drops all (FLUSHALL: an
 * invalidation of no key), every key is armed again and its watchers told: what changed meanwhile sent
 * nothing. An error on the connection tells them too (their reads then fail: an outage they report).
 * A silent connection tells nothing: watchers poll slowly besides.
 */
function keyWatchers (conn: TrackingConnection) {
  const watchers = new Map<string, Set<() => void>>()
  const arm = (key: string, then: () => void): void => {
    conn.sendCommand(['EXISTS', key]).then(then, then)
  }
  const tell = (key: string): void => {
    const listeners = watchers.get(key)
    if (listeners !== undefined) arm(key, () => { for (const listener of [...listeners]) listener() })
  }
  const tellAll = (): void => { for (const key of watchers.keys()) tell(key) }
  conn.on('ready', tellAll)
  conn.on('error', tellAll) // a lost connection: the watchers' reads fail, and tell their pages at once
  return {
    tell,
    tellAll,
    watch (key: string, listener: () => void): () => void {
      let listeners = watchers.get(key)
      if (listeners === undefined) watchers.set(key, listeners = new Set())
      listeners.add(listener)
      // Armed, then told once: a change made before the key was tracked is read then.
      arm(key, () => { if (listeners.has(listener)) listener() })
      return () => {
        listeners.delete(listener)
        if (listeners.size === 0 && watchers.get(key) === listeners) watchers.delete(key)
      }
    },
    clear: (): void => { watchers.clear() }
  }
}

function accessCache (conn: TrackingConnection, maxEntries: number) {
  const reads = boundedReads(maxEntries)
  const watched = keyWatchers(conn)
  const counts: Record<CacheOutcome, number> = { hit: 0, miss: 0, uncached: 0 }
  /** Reads in flight per key, and how many times the key was invalidated since the first was sent. */
  const flights = new Map<string, { reads: number, invalidated: number }>()
  let flushes = 0
  let fresh = { epoch: -1, sentAt: 0 }
  let pinging = false

  const drop = (key: string): void => {
    reads.drop(key)
    const flight = flights.get(key)
    if (flight !== undefined) flight.invalidated++
  }
  const flush = (): void => { reads.clear(); flushes++ }
  conn.on('invalidate', (key) => { if (key === null) { flush(); watched.tellAll() } else { drop(String(key)); watched.tell(String(key)) } })
  conn.on('error', flush)
  conn.on('end', flush)

  /** A reply sent at `sentAt` came back on connection `epoch`: every invalidation before it is in. */
  const proven = (epoch: number, sentAt: number): void => {
    if (epoch === conn.socketEpoch && (fresh.epoch !== epoch || sentAt > fresh.sentAt)) fresh = { epoch, sentAt }
  }
  const usable = (): boolean => {
    if (fresh.epoch !== conn.socketEpoch) return false
    const age = Date.now() - fresh.sentAt
    if (age >= HEARTBEAT_MS && !pinging) {
      const epoch = conn.socketEpoch
      const sentAt = Date.now()
      pinging = true
      conn.sendCommand(['PING']).then(() => { proven(epoch, sentAt) }, () => {}).finally(() => { pinging = false })
    }
    return age < LEASE_MS
  }

  async function fetch (key: string, id: string, args: readonly string[]): Promise<Reply> {
    const epoch = conn.socketEpoch
    const sentAt = Date.now()
    const seenFlushes = flushes
    let flight = flights.get(key)
    if (flight === undefined) flights.set(key, flight = { reads: 0, invalidated: 0 })
    flight.reads++
    const seen = flight.invalidated
    try {
      const reply = await conn.sendCommand(args) as Reply
      proven(epoch, sentAt)
      if (flight.invalidated === seen && flushes === seenFlushes && conn.socketEpoch === epoch && conn.isReady) reads.keep(key, id, reply)
      return reply
    } finally {
      if (--flight.reads === 0) flights.delete(key)
    }
  }

  return {
    /**
     * The HMGET `read` names: from memory on a hit, else read on the tracked connection and kept;
     * `strict` reads it on the store's own connection, uncached, while the tracked one is down.
     */
    read<R extends CachedRead> (read: R, strict: (read: R) => Promise<unknown>): { outcome: CacheOutcome, reply: Reply | Promise<Reply> } {
      const hit = conn.isReady && usable() ? reads.get(read.key, read.id) : undefined
      const outcome: CacheOutcome = !conn.isReady ? 'uncached' : hit !== undefined ? 'hit' : 'miss'
      counts[outcome]++
      return { outcome, reply: hit ?? (outcome === 'uncached' ? strict(read) as Promise<Reply> : fetch(read.key, read.id, read.args)) }
    },

    /** How many reads had each outcome since the cache opened (the metrics count them at each scrape). */
    counts: counts as Readonly<Record<CacheOutcome, number>>,

    /** This gateway writes `keys` (a script sent, or answered): their entries go. */
    wrote (keys: string[]): void { for (const key of keys) drop(key) },

    get size (): number { return reads.size },
    watch: watched.watch, // keyWatchers

    close (): void { flush(); watched.clear(); if (conn.isOpen) conn.destroy() }
  }
}
