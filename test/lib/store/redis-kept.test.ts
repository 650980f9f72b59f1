// The sweep of users' keys kept for good (lib/store/redis-kept.ts): a key that roles or a ban without
// end keep has no TTL, and before the sweep an expired session's fields, its session_key among them,
// stayed there until the user's next write, for good if none came.
import { setTimeout as sleep } from 'node:timers/promises'
import { test, type Test } from 'tap'
import { newSessionId, userTag } from '../../../lib/ids.js'
import { connectRedis } from '../../../lib/store/redis-client.js'
import { KEPT_REVISIT_MS, KEPT_SWEEP_BATCH } from '../../../lib/store/redis-kept.js'
import { keyNames } from '../../../lib/store/redis-layout.js'
import { SCRIPTS } from '../../../lib/store/redis-scripts.js'
import { createRedisStore } from '../../../lib/store/redis.js'
import { redisClient, startRedis } from '../../helper.js'

async function setup (t: Test, name: string, sweepEveryMs?: number) {
  const redis = await startRedis(t)
  const prefix = `${redis.prefix}${name}:`
  const store = createRedisStore({ client: await connectRedis({ url: redis.url, timeoutMs: 1000 }), keyPrefix: prefix, timeoutMs: 1000, ownsClient: true, ...(sweepEveryMs !== undefined ? { sweepEveryMs } : {}) })
  t.teardown(async () => await store.close())
  const admin = redisClient(t, redis.url)
  const keys = keyNames(prefix)
  const tag = userTag('wxapp', name)
  /** When the sweep visits the user next (ms, Redis' clock), or null when it is not in the index. */
  const visit = async (who = tag): Promise<number | null> => { const s = await admin.zscore(keys.kept[0], who); return s === null ? null : Number(s) }
  return { store, admin, keys, tag, key: keys.user(tag), visit, redis }
}

const data = (sessionKey: string) => ({ sub: 'op', openid: 'o-op', sessionKey, device: { deviceType: 'mp' } })

test('an operator who never comes back keeps no expired session: the sweep deletes its fields, session_key included, and keeps the roles', async (t) => {
  const { store, admin, tag, key, visit } = await setup(t, 'operator')
  const gone = { tag, sid: newSessionId() }
  const live = { tag, sid: newSessionId() }
  await store.createSession(gone, data('secret-of-the-gone-session'), 'h0', 1)
  await store.createSession(live, data('secret-live'), 'h1', 60)
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  t.equal(await admin.pttl(key), -1, 'kept for good by the roles')
  t.ok(await visit() !== null && (await visit() ?? Infinity) <= Date.now(), 'the operator\'s change makes the user due at once')
  await sleep(1_100)
  t.ok((await admin.hvals(key)).some((v) => v.includes('secret-of-the-gone-session')), 'before the sweep, the expired session\'s session_key is still there')
  t.equal(await store.sweepKept(), 1, 'one user visited')
  const fields = await admin.hkeys(key)
  t.notOk(fields.some((f) => f.startsWith(gone.sid)), 'no field of the expired session is left')
  t.notOk((await admin.hvals(key)).some((v) => v.includes('secret-of-the-gone-session')), 'its session_key is gone')
  t.ok(fields.includes(live.sid) && fields.includes('!acl'), 'the live session and the roles stay')
  t.equal(await admin.pttl(key), -1, 'still kept for good')
  const next = await visit() ?? 0
  t.ok(next > Date.now() + 50_000 && next <= Date.now() + 61_000, `due again when the live session expires (in ${next - Date.now()} ms)`)
  t.equal(await store.sweepKept(), 0, 'nothing is due before that')
  await store.revokeSession(live)
  await store.unbanService(tag, 'none') // an operator's change: due again
  await store.sweepKept()
  const later = await visit() ?? 0
  t.ok(later > Date.now() + KEPT_REVISIT_MS - 5_000 && later <= Date.now() + KEPT_REVISIT_MS, 'with nothing left that expires, a login may still start a session unseen: back within KEPT_REVISIT_MS')
})

test('a ban without end: the sweep comes back when the markers expire, then forgets the user, whom an unban brings back', async (t) => {
  const { store, admin, tag, key, visit } = await setup(t, 'banned')
  await store.createSession({ tag, sid: newSessionId() }, data('k'), 'h0', 1)
  await store.ban(tag, { until: null, reason: 'spam' }, 1000)
  t.equal(await store.sweepKept(), 1)
  const markerAt = await visit() ?? 0
  t.ok(markerAt > Date.now() && markerAt <= Date.now() + 1_100, 'due when the ended session\'s marker expires (no session can start under the ban)')
  await sleep(markerAt - Date.now() + 50)
  t.equal(await store.sweepKept(), 1)
  t.same(await admin.hkeys(key), ['!ban'], 'the marker is gone, the ban stays')
  t.equal(await visit(), null, 'nothing left that expires, and no session can start: the user leaves the index')
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  await store.unban(tag)
  t.ok(await visit() !== null, 'an unban lets sessions start in a key the roles keep: the user is back')
  await store.sweepKept()
  t.ok((await visit() ?? 0) > Date.now() + KEPT_REVISIT_MS - 5_000, 'visited every KEPT_REVISIT_MS')
})

test('a user whose key is no longer kept for good leaves the index at the next sweep; its key expires on its own', async (t) => {
  const { store, admin, tag, key, visit } = await setup(t, 'former')
  await store.createSession({ tag, sid: newSessionId() }, data('k'), 'h0', 60)
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  await store.setAccess(tag, { roles: [], permissions: [] })
  t.ok(await admin.pttl(key) > 0)
  t.ok(await visit() !== null, 'in the index until a sweep looks')
  t.equal(await store.sweepKept(), 1)
  t.equal(await visit(), null)
  const other = userTag('wxapp', 'nobody')
  await store.banService(other, { service: 'pay', until: Date.now() + 60_000, reason: 'r' })
  await store.unbanService(other, 'pay')
  t.equal(await store.sweepKept(), 1, 'a user whose key is gone is visited once')
  t.equal(await visit(other), null, 'and forgotten')
})

test('a sweep that read an entry before an operator\'s change does not write its verdict over the change', async (t) => {
  const { store, admin, keys, tag, visit } = await setup(t, 'race')
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  const [index, versions] = keys.kept
  const due = await admin.eval(SCRIPTS.wxauthKeptDue, 2, index, versions, '10') as string[]
  t.equal(due[0], tag, 'the sweep reads the user and its version')
  await store.setAccess(tag, { roles: ['admin', 'auditor'], permissions: [] }) // meanwhile, an operator's change
  const wrote = await admin.eval(SCRIPTS.wxauthKeptNext, 2, index, versions, tag, String(due[1]), '-1')
  t.equal(wrote, 0, 'the verdict, taken on the key as it was, is not written')
  t.ok(await visit() !== null, 'the user stays in the index, due')
  const fresh = await admin.eval(SCRIPTS.wxauthKeptDue, 2, index, versions, '10') as string[]
  t.not(fresh[1], due[1], 'at a new version')
})

test('one gateway sweeps at a time, at most KEPT_SWEEP_BATCH users, the earliest due first; the timer sweeps on its own', async (t) => {
  const { store, admin, keys, visit } = await setup(t, 'batch')
  const tags = Array.from({ length: KEPT_SWEEP_BATCH + 5 }, (_, i) => userTag('wxapp', `u${i}`))
  for (const tag of tags) await store.setAccess(tag, { roles: ['r'], permissions: [] })
  await admin.set(keys.keptLock, 'another gateway', 'PX', 10_000)
  t.equal(await store.sweepKept(), 0, 'another gateway holds the lock: nothing visited')
  await admin.del(keys.keptLock)
  t.equal(await store.sweepKept(), KEPT_SWEEP_BATCH, 'a bounded batch')
  t.ok((await visit(tags[0]) ?? 0) > Date.now(), 'the first entered was visited first')
  t.equal(await admin.zcount(keys.kept[0], '-inf', Date.now()), 5, 'the last ones wait for the next sweep')
  t.equal(await admin.exists(keys.keptLock), 0, 'the lock is released')
  t.equal(await store.sweepKept(), 5)

  const timed = await setup(t, 'timed', 50)
  await timed.store.setAccess(timed.tag, { roles: ['r'], permissions: [] })
  await sleep(300)
  t.ok((await timed.visit() ?? 0) > Date.now(), 'the store\'s own timer swept the user')
})

test('a sweep on a Redis that hangs fails fast with STORE_UNAVAILABLE; a lock it got too late is released; the timer\'s failures throw nothing', async (t) => {
  const redis = await startRedis(t, { own: true })
  const open = async (keyPrefix: string, sweepEveryMs?: number) => {
    const store = createRedisStore({ client: await connectRedis({ url: redis.url, timeoutMs: 300 }), keyPrefix, timeoutMs: 300, ownsClient: true, ...(sweepEveryMs !== undefined ? { sweepEveryMs } : {}) })
    t.teardown(async () => await store.close())
    await store.setAccess(userTag('wxapp', 'x'), { roles: ['r'], permissions: [] })
    return store
  }
  const store = await open('down:')
  await open('timer:', 20) // sweeps every 20 ms: an unhandled failure would end the test's process
  const admin = redisClient(t, redis.url)
  redis.pause()
  t.teardown(() => { redis.resume() })
  const started = Date.now()
  await t.rejects(store.sweepKept(), { code: 'STORE_UNAVAILABLE' })
  t.ok(Date.now() - started < 1_500, `within the store's deadline (${Date.now() - started} ms)`)
  redis.resume()
  await sleep(200)
  t.equal(await admin.exists(keyNames('down:').keptLock), 0, 'the lock its SET took once Redis answered is released')
  t.equal(await store.sweepKept(), 1, 'back: the user is visited')
})
