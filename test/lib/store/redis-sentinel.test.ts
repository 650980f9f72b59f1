// The Redis store through a host's node-redis Sentinel client (createSentinel()), on a real master
// watched by a real Sentinel.
import { createSentinel } from '@redis/client'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import { createRedisStore } from '../../../lib/store/redis.js'
import { newSessionId } from '../../../lib/ids.js'
import { startRedisSentinel } from '../../helper.js'
import { storeContract } from './contract.js'

test('redis store through a node-redis Sentinel client honours the store contract', async (t) => {
  const { name, sentinel } = await startRedisSentinel(t)
  const client = createSentinel({ name, sentinelRootNodes: [sentinel] })
  client.on('error', () => {})
  await client.connect()
  t.teardown(async () => await client.close())
  storeContract(t, async (t) => {
    const store = createRedisStore({ client, keyPrefix: `${newSessionId()}:`, timeoutMs: 2000, ownsClient: false })
    t.teardown(async () => await store.close())
    return { store, advance: async (ms) => { await sleep(ms) } }
  })
})
