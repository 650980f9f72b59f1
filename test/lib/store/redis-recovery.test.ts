// Which node-redis cluster clients passed in find a promoted replica by themselves after a master's
// crash (6.x, by its reconnection-triggered slot map reload) and which do not (5.x, or 6.x with the
// reload off): real clients of both versions, connected to a real Redis Cluster.
import { createClient as createClient5, createCluster as createCluster5 } from '@redis/client'
import { Cluster } from 'ioredis'
import { createClient as createClient6, createCluster as createCluster6, type RedisClusterOptions } from 'redis6'
import { test, type Test } from 'tap'
import { canReloadSlots } from '../../../lib/store/redis-cluster-heal.js'
import { clusterRefreshOf, recoveryWarning } from '../../../lib/store/redis-recovery.js'
import type { RedisClient } from '../../../lib/store/redis-client.js'
import { startRedis, startRedisCluster } from '../../helper.js'

type Options6 = Partial<RedisClusterOptions>

test('a node-redis cluster client: how it comes back after a master crashed, and the warning it gets', async (t) => {
  const { nodes } = await startRedisCluster(t)
  const rootNodes = nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` }))
  const connected = async <C extends { connect: () => Promise<unknown>, destroy: () => void, on: (e: 'error', l: () => void) => unknown }>(t: Test, client: C): Promise<C> => {
    client.on('error', () => {})
    await client.connect()
    t.teardown(() => { client.destroy() })
    return client
  }
  // The store reloads the slot map of both versions itself (lib/store/redis-cluster-heal.ts): the
  // warnings are for a client without that reload, as a later version might be.
  const withoutReload = (client: RedisClient): RedisClient => Object.create(client, { _slots: { value: undefined } }) as RedisClient
  const v6 = async (t: Test, opts: Options6 = {}): Promise<RedisClient> => withoutReload(await connected(t, createCluster6({ rootNodes, ...opts })))

  t.test('node-redis 5 and 6 as they are: no warning, the store reloads their slot maps', async (t) => {
    for (const client of [await connected(t, createCluster5({ rootNodes })), await connected(t, createCluster6({ rootNodes, topologyRefreshOnReconnectionAttemptStrategy: false }))]) {
      t.ok(canReloadSlots(client))
      t.equal(recoveryWarning(client), null)
    }
  })

  t.test('node-redis 5: never (a MOVED answer only), with a warning to upgrade or pass ioredis', async (t) => {
    const real = await connected(t, createCluster5({ rootNodes }))
    const client = withoutReload(real)
    t.equal(clusterRefreshOf(client), 'never')
    t.match(recoveryWarning(client), /does not recover when a master dies outright.*node-redis#2806.*Upgrade it to node-redis 6.*ioredis Cluster.*REDIS_CLUSTER_NODES/)
    t.equal(await real.sendCommand(undefined, true, ['PING']), 'PONG', 'the probe leaves the client as it was')
  })

  t.test('node-redis 6 with the default reload (5000 ms): no warning', async (t) => {
    const client = await v6(t)
    t.equal(clusterRefreshOf(client), 5000)
    t.equal(recoveryWarning(client), null)
    t.equal(await (client as ReturnType<typeof createCluster6>).sendCommand(undefined, true, ['PING']), 'PONG', 'the probe leaves the client as it was')
  })

  t.test('node-redis 6 with a shorter delay, or a function of the host\'s: no warning', async (t) => {
    const shorter = await v6(t, { topologyRefreshOnReconnectionAttemptStrategy: 1000 })
    t.equal(clusterRefreshOf(shorter), 1000)
    t.equal(recoveryWarning(shorter), null)
    const custom = await v6(t, { topologyRefreshOnReconnectionAttemptStrategy: () => 2000 })
    t.equal(clusterRefreshOf(custom), 'custom')
    t.equal(recoveryWarning(custom), null)
  })

  t.test('node-redis 6 with a longer delay: a warning naming the option', async (t) => {
    const client = await v6(t, { topologyRefreshOnReconnectionAttemptStrategy: 15_000 })
    t.equal(clusterRefreshOf(client), 15_000)
    t.match(recoveryWarning(client), /reloads its slot map 15000 ms after.*longer than 10 s.*Set topologyRefreshOnReconnectionAttemptStrategy to 5000 or less/)
  })

  t.test('node-redis 6 with the reload off, or nodes that never reconnect: the warning, naming the options', async (t) => {
    const off: Options6[] = [
      { topologyRefreshOnReconnectionAttemptStrategy: false },
      { topologyRefreshOnReconnectionAttemptStrategy: 0 },
      { defaults: { socket: { reconnectStrategy: false } } }
    ]
    for (const opts of off) {
      const client = await v6(t, opts)
      t.equal(clusterRefreshOf(client), 'off', JSON.stringify(opts))
      t.match(recoveryWarning(client), /does not recover when a master dies outright.*Leave its topologyRefreshOnReconnectionAttemptStrategy on.*reconnectStrategy.*ioredis Cluster/)
    }
  })

  t.test('other clients: not asked', async (t) => {
    const redis = await startRedis(t)
    const ioredis = new Cluster(nodes, { lazyConnect: true })
    t.teardown(() => { ioredis.disconnect() })
    const others: Array<[string, RedisClient]> = [
      ['ioredis Cluster', ioredis],
      ['node-redis 5 client', await connected(t, createClient5({ url: redis.url }))],
      ['node-redis 6 client', await connected(t, createClient6({ url: redis.url }))]
    ]
    for (const [name, client] of others) {
      t.equal(clusterRefreshOf(client), null, name)
      t.equal(recoveryWarning(client), null, name)
    }
  })
})
