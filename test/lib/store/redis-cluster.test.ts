// The Redis store on a real Redis Cluster (three masters), through both client libraries a host may
// pass: every operation touches one slot (a user is one key under its hash tag), so it works as is.
import { createCluster } from '@redis/client'
import { Cluster } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import { createRedisStore } from '../../../lib/store/redis.js'
import { newSessionId, userTag } from '../../../lib/ids.js'
import { commandStats, hasScriptsLibrary, redisClient, startRedisCluster } from '../../helper.js'
import { until } from '../../redis-deployments.js'
import { storeContract } from './contract.js'

test('redis store on a Redis Cluster', async (t) => {
  const { nodes } = await startRedisCluster(t)

  const nodeRedis = createCluster({ rootNodes: nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })) })
  nodeRedis.on('error', () => {})
  await nodeRedis.connect()
  t.teardown(async () => await nodeRedis.close())
  const ioredis = new Cluster(nodes, { enableAutoPipelining: true })
  ioredis.on('error', () => {})
  t.teardown(() => ioredis.disconnect())

  const clients = [['node-redis createCluster()', nodeRedis], ['ioredis Cluster', ioredis]] as const
  for (const [name, client] of clients) {
    t.test(`${name}: the store contract`, async (t) => {
      storeContract(t, async (t) => {
        const store = createRedisStore({ client, keyPrefix: `${newSessionId()}:`, timeoutMs: 2000, ownsClient: false })
        t.teardown(async () => await store.close())
        return { store, advance: async (ms) => { await sleep(ms) } }
      })
    })
  }

  for (const [name, client] of clients) {
    t.test(`${name}: the sweep of keys kept for good reaches users on every node, its index in one slot`, async (t) => {
      const store = createRedisStore({ client, keyPrefix: `${newSessionId()}:`, timeoutMs: 500, ownsClient: false })
      t.teardown(async () => await store.close())
      for (let i = 0; i < 12; i++) await store.setAccess(userTag('wxapp', `op-${i}`), { roles: ['admin'], permissions: [] })
      await sleep(1_050) // due once the changes have landed: twice the store's deadline
      t.equal(await store.sweepKept(), 12)
      t.equal(await store.sweepKept(), 0, 'each is due again later')
    })
  }

  for (const [name, client] of clients) {
    t.test(`${name}: the scripts' library reaches every master at once, at the first call that finds no function`, async (t) => {
      const admins = nodes.map(({ host, port }) => redisClient(t, `redis://${host}:${port}`))
      await Promise.all(admins.map(async (admin) => { await admin.call('FUNCTION', 'FLUSH'); await admin.config('RESETSTAT') }))
      const store = createRedisStore({ client, keyPrefix: `${newSessionId()}:`, timeoutMs: 2000, ownsClient: false })
      t.teardown(async () => await store.close())
      const login = async (i: number): Promise<void> => {
        t.equal((await store.createSession({ tag: userTag('wxapp', `user-${i}`), sid: newSessionId() }, { sub: `user-${i}`, openid: 'o', sessionKey: 'k' }, 'h', 60)).status, 'created')
      }
      for (let i = 0; i < 30; i++) await login(i)
      await until(async () => (await Promise.all(admins.map(hasScriptsLibrary))).every(Boolean), 'the library on every master', 5000, 20)
      // Loads are a second apart at least: one, sent to every master, is what loaded them all. Users are
      // on every node (the test below): each master's calls are by FCALL now.
      for (let i = 0; i < 30; i++) await login(i)
      for (const admin of admins) {
        const fcall = await commandStats(admin, 'fcall')
        t.ok(fcall.calls > 0, 'FCALL on this master')
        t.ok(fcall.failed <= 1, 'at most one call on this master found no function')
      }
    })
  }

  t.test('users are spread over the nodes', async (t) => {
    const store = createRedisStore({ client: nodeRedis, keyPrefix: 'spread:', timeoutMs: 2000, ownsClient: false })
    for (let i = 0; i < 30; i++) {
      await store.createSession({ tag: userTag('wxapp', `user-${i}`), sid: newSessionId() }, { sub: `user-${i}`, openid: 'o', sessionKey: 'k' }, 'h', 60)
    }
    const sizes = await Promise.all(nodes.map(async ({ host, port }) => Number(await redisClient(t, `redis://${host}:${port}`).dbsize())))
    t.equal(sizes.reduce((a, b) => a + b, 0) >= 30, true, 'every user is a key')
    t.ok(sizes.every((n) => n > 0), `each node holds some (${sizes.join(', ')})`)
  })
})
