// Locks in Redis (lib/store/redis-locks.ts), through the store's access_token renewal lock: one
// owner at a time, released by its owner only, and let go at once when it answered too late.
import { setTimeout as sleep } from 'node:timers/promises'
import { test, type Test } from 'tap'
import { connectRedis } from '../../../lib/store/redis-client.js'
import { createRedisStore } from '../../../lib/store/redis.js'
import { keyNames } from '../../../lib/store/redis-layout.js'
import type { SessionStore } from '../../../lib/store/types.js'
import { redisClient, startRedis } from '../../helper.js'

async function lockStore (t: Test, url: string, prefix: string): Promise<SessionStore> {
  const store = createRedisStore({ client: await connectRedis({ url, timeoutMs: 300 }), keyPrefix: prefix, timeoutMs: 300, ownsClient: true })
  t.teardown(async () => await store.close())
  return store
}

test('a lock has one owner at a time, for its TTL, and only its owner releases it', async (t) => {
  const redis = await startRedis(t)
  const prefix = `${redis.prefix}locks:`
  const store = await lockStore(t, redis.url, prefix)
  const admin = redisClient(t, redis.url)
  t.ok(await store.lockCredential('wxapp', 'first', 60_000))
  t.notOk(await store.lockCredential('wxapp', 'second', 60_000), 'held: another owner waits')
  const pttl = await admin.pttl(keyNames(prefix).credentialLock('wxapp'))
  t.ok(pttl > 55_000 && pttl <= 60_000, `it lives for its TTL (${pttl} ms)`)
  await store.unlockCredential('wxapp', 'second')
  t.notOk(await store.lockCredential('wxapp', 'third', 60_000), 'another owner cannot release it')
  await store.unlockCredential('wxapp', 'first')
  t.ok(await store.lockCredential('wxapp', 'third', 60_000), 'its owner did')
})

test('a credential lock that answered after its deadline is released: renewal is not held off for the lock\'s TTL', async (t) => {
  const redis = await startRedis(t, { own: true })
  const store = await lockStore(t, redis.url, `${redis.prefix}late-lock:`)
  redis.pause()
  t.teardown(() => { redis.resume() })
  await t.rejects(store.lockCredential('wxapp', 'first', 60_000), { code: 'STORE_UNAVAILABLE' }, 'Redis frozen: the lock times out')
  redis.resume()
  // The SET NX was in flight: Redis applies it once it thaws, and the late answer releases it.
  let locked = await store.lockCredential('wxapp', 'second', 60_000)
  for (let i = 0; i < 100 && !locked; i++) {
    await sleep(20)
    locked = await store.lockCredential('wxapp', 'second', 60_000)
  }
  t.ok(locked, 'another owner takes the lock at once, not a minute later')
  t.notOk(await store.lockCredential('wxapp', 'third', 60_000), 'a lock that answered in time stays')
})
