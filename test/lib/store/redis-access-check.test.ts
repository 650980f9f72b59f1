// The Redis store's access check (lib/store/redis-access-check.ts) remembers each token's command by
// its jti: on a real Redis, with the read copy and without, a jti presented for another session
// reads that session, and every check still reads what Redis holds now.
import { test, type Test } from 'tap'
import { newSessionId, userTag, type SessionRef } from '../../../lib/ids.js'
import { connectRedis } from '../../../lib/store/redis-client.js'
import { openAccessCache } from '../../../lib/store/redis-access-cache.js'
import { createRedisStore } from '../../../lib/store/redis.js'
import type { SessionStore } from '../../../lib/store/types.js'
import { startRedis, statusOf } from '../../helper.js'

async function storeOn (t: Test, url: string, keyPrefix: string, tracked: boolean): Promise<SessionStore> {
  const client = await connectRedis({ url, timeoutMs: 1000 })
  const accessCache = tracked ? await openAccessCache(client, { maxEntries: 100, timeoutMs: 1000 }) : undefined
  const store = createRedisStore({ client, keyPrefix, timeoutMs: 1000, ownsClient: true, ...(accessCache !== undefined ? { accessCache } : {}) })
  t.teardown(async () => await store.close())
  return store
}

const session = async (store: SessionStore, sub: string): Promise<SessionRef> => {
  const ref = { tag: userTag('wxapp', sub), sid: newSessionId() }
  await store.createSession(ref, { sub, openid: `o-${sub}`, sessionKey: 'k' }, 'h0', 60)
  return ref
}

for (const tracked of [false, true]) {
  test(`one jti checked against two sessions reads each session's own state (${tracked ? 'tracked' : 'strict'})`, async (t) => {
    const redis = await startRedis(t)
    const store = await storeOn(t, redis.url, `${redis.prefix}${newSessionId()}:`, tracked)
    const [a, b] = [await session(store, 'ann'), await session(store, 'bob')]
    await store.blacklist(a, 'j', 60)
    t.equal(await store.checkAccess(a, 'j'), 'revoked', 'blacklisted for ann')
    t.equal(statusOf(await store.checkAccess(b, 'j')), 'ok', 'bob\'s session: not the command of ann\'s')
    t.equal(await store.checkAccess(a, 'j'), 'revoked', 'ann\'s again')
    const [c, d] = [await session(store, 'cid'), await session(store, 'cid')]
    await store.revokeSession(c)
    t.equal(await store.checkAccess(c, 'k'), 'revoked', 'an ended session')
    t.equal(statusOf(await store.checkAccess(d, 'k')), 'ok', 'the same user\'s other session')
    t.equal(await store.checkAccess(c, 'k'), 'revoked')
    await store.revokeSession(d)
    t.equal(await store.checkAccess(d, 'k'), 'revoked', 'a remembered command still reads what Redis holds now')
    t.equal(statusOf(await store.checkAccess(b, 'j')), 'ok')
  })
}
