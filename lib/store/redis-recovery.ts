// Whether a node-redis cluster client passed in finds a promoted replica by itself after a master
// died outright. A dead master answers nothing, so no MOVED tells the client that its slots moved:
// node-redis 5 sends them to the dead address until a restart (redis/node-redis#2806). node-redis 6
// also reloads its slot map while a node it was connected to keeps trying to reconnect: on the first
// attempt `topologyRefreshOnReconnectionAttemptStrategy` ms (5000 by default) after the first one,
// then again as long after each reload; `false` or 0 turns that off. (An ioredis Cluster reloads on
// connection errors and on a timer; the gateway's own cluster client is one.)
//
// Telling 6 from 5: the instances offer the same public members (5.12.4 and 6.0.0 differ only in the
// type of that option) and do not say their version. So the client is asked: duplicate() (public in
// both) with a value of the option that 6.x refuses at once (a TypeError from its validation, before
// anything connects), while 5.x ignores an option it does not know and builds an unconnected copy.
// The option's value is read from `_options`, declared (as read-only) in both versions' types.
//
// Neither is needed while the store can reload the client's slot map itself after a connection
// failure (lib/store/redis-cluster-heal.ts: both versions): only a client without that reload is
// warned about.
import type { RedisClient } from './redis-client.js'
import { canReloadSlots } from './redis-cluster-heal.js'

interface ClusterOptions {
  topologyRefreshOnReconnectionAttemptStrategy?: unknown
  defaults?: { socket?: { reconnectStrategy?: unknown } }
}

interface NodeRedisClusterShape {
  duplicate?: (overrides: ClusterOptions) => unknown
  _options?: ClusterOptions
}

/** node-redis 6's default: a slot map reload 5 s after a node's first reconnection attempt. */
export const DEFAULT_REFRESH_MS = 5000

// The longest delay that brought every request back within 10 s of a promotion in
// test/redis-failover.test.ts, a promotion that came just after a reload included (the client then
// waits one more delay, plus the wait for a node's next reconnection attempt).
const LONGEST_MEASURED_MS = DEFAULT_REFRESH_MS

/** Whether `client` is a node-redis cluster that knows the reconnection-triggered reload (6.x). */
function knowsReconnectionRefresh (client: NodeRedisClusterShape): boolean {
  if (typeof client.duplicate !== 'function') return false
  try {
    client.duplicate({ topologyRefreshOnReconnectionAttemptStrategy: -1 })
    return false
  } catch (err) {
    return err instanceof TypeError
  }
}

/**
 * How a node-redis cluster client comes back after a master died outright: the delay in ms after a
 * node's first reconnection attempt at which it reloads its slot map (6.x), 'custom' when a function
 * of the host's decides, 'off' (6.x with the reload off, or with nodes that never reconnect), 'never'
 * (5.x). Null for any other client.
 */
export function clusterRefreshOf (client: RedisClient): number | 'custom' | 'off' | 'never' | null {
  if (!('masters' in client) || 'defineCommand' in client) return null
  const cluster = client as NodeRedisClusterShape
  if (!knowsReconnectionRefresh(cluster)) return 'never'
  const options = cluster._options ?? {}
  if (options.defaults?.socket?.reconnectStrategy === false) return 'off'
  const strategy = options.topologyRefreshOnReconnectionAttemptStrategy ?? DEFAULT_REFRESH_MS
  if (typeof strategy === 'function') return 'custom'
  return strategy === false || strategy === 0 ? 'off' : Number(strategy)
}

/** The warning a client passed in deserves at boot for how it survives a master's crash, or null. */
export function recoveryWarning (client: RedisClient): string | null {
  // Asked first: clusterRefreshOf probes the client with a duplicate(), needless when the store reloads it.
  if (!('masters' in client) || canReloadSlots(client)) return null
  const refresh = clusterRefreshOf(client)
  if (refresh === 'never' || refresh === 'off') {
    const fix = refresh === 'never'
      ? 'Upgrade it to node-redis 6 (redis or @redis/client 6.x), which also reloads it while a node reconnects'
      : 'Leave its topologyRefreshOnReconnectionAttemptStrategy on (the default, 5000 ms) and its nodes\' reconnectStrategy too'
    return `the node-redis cluster client passed in does not recover when a master dies outright: it reloads its slot map only on a MOVED answer (redis/node-redis#2806), so requests for that master's slots fail until a restart, even after its replica took over. ${fix}, pass an ioredis Cluster, or let the gateway connect with REDIS_CLUSTER_NODES`
  }
  if (typeof refresh === 'number' && refresh > LONGEST_MEASURED_MS) {
    return `the node-redis cluster client passed in reloads its slot map ${refresh} ms after a dead node's first reconnection attempt, then as long after each reload: requests for a crashed master's slots may fail for longer than 10 s after its replica took over. Set topologyRefreshOnReconnectionAttemptStrategy to ${DEFAULT_REFRESH_MS} or less (node-redis's default is ${DEFAULT_REFRESH_MS})`
  }
  return null
}
