// The sweep of users' keys kept for good (lib/store/redis-kept.ts): a key that roles or a ban without
// end keep has no TTL, and before the sweep an expired session's fields, its session_key among them,
// stayed there until the user's next write, for good if none came.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { test, type Test } from 'tap'
import { newSessionId, userTag } from '../../../lib/ids.js'
import { connectRedis } from '../../../lib/store/redis-client.js'
import { KEPT_RETRY_MS, KEPT_REVISIT_MS, KEPT_SWEEP_BATCH, sweepWarning } from '../../../lib/store/redis-kept.js'
import { keyNames } from '../../../lib/store/redis-layout.js'
import { SCRIPTS } from '../../../lib/store/redis-scripts.js'
import { createRedisStore, type RedisStoreOptions } from '../../../lib/store/redis.js'
import { redisClient, startRedis } from '../../helper.js'
import { until } from '../../redis-deployments.js'

/** The store's deadline here: an operator's change makes its user due twice that later (once it has landed). */
const DEADLINE_MS = 1000

async function setup (t: Test, name: string, opts: Partial<RedisStoreOptions> = {}) {
  const redis = await startRedis(t)
  const prefix = `${redis.prefix}${name}:`
  const store = createRedisStore({ client: await connectRedis({ url: redis.url, timeoutMs: DEADLINE_MS }), keyPrefix: prefix, timeoutMs: DEADLINE_MS, ownsClient: true, ...opts })
  t.teardown(async () => await store.close())
  const admin = redisClient(t, redis.url)
  const keys = keyNames(prefix)
  const tag = userTag('wxapp', name)
  /** When the sweep visits the user next (ms, Redis' clock), or null when it is not in the index. */
  const visit = async (who = tag): Promise<number | null> => { const s = await admin.zscore(keys.kept[0], who); return s === null ? null : Number(s) }
  /** What operators just changed made due now, as the deadlines after the changes would (an admin's write to the index's scores), once the entries not waited for are written. */
  const due = async (): Promise<void> => {
    for (let last = -1, now = 0; now !== last; await sleep(20)) [last, now] = [now, Number(await admin.get(keys.kept[2]))]
    for (const who of await admin.zrangebyscore(keys.kept[0], '-inf', Date.now() + 3 * DEADLINE_MS)) await admin.zadd(keys.kept[0], 'XX', 0, who)
  }
  /** Waits until `n` entries were written to the index (an operator's change writes two, the second not waited for). */
  const entered = async (n: number): Promise<void> => {
    await until(async () => Number(await admin.get(keys.kept[2])) >= n, `${n} writes to the index`, 5_000, 5)
  }
  return { store, admin, keys, tag, key: keys.user(tag), visit, due, entered, prefix, url: redis.url }
}

const data = (sessionKey: string) => ({ sub: 'op', openid: 'o-op', sessionKey, device: { deviceType: 'mp' } })

test('an operator who never comes back keeps no expired session: the sweep deletes its fields, session_key included, and keeps the roles', async (t) => {
  const { store, admin, tag, key, visit, due } = await setup(t, 'operator')
  const gone = { tag, sid: newSessionId() }
  const live = { tag, sid: newSessionId() }
  await store.createSession(gone, data('secret-of-the-gone-session'), 'h0', 1)
  await store.createSession(live, data('secret-live'), 'h1', 60)
  const before = Date.now()
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  t.equal(await admin.pttl(key), -1, 'kept for good by the roles')
  const first = await visit() ?? Infinity
  t.ok(first >= before + 2 * DEADLINE_MS - 5 && first <= Date.now() + 2 * DEADLINE_MS, 'entered before the change, due once it has landed (twice the store\'s deadline)')
  await sleep(1_100)
  await due()
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
  await due()
  await store.sweepKept()
  const later = await visit() ?? 0
  t.ok(later > Date.now() + KEPT_REVISIT_MS - 5_000 && later <= Date.now() + KEPT_REVISIT_MS, 'with nothing left that expires, a login may still start a session unseen: back within KEPT_REVISIT_MS')
  await store.createSession({ tag, sid: newSessionId() }, data('k'), 'h2', 2 * KEPT_REVISIT_MS / 1000)
  await store.unbanService(tag, 'none')
  await due()
  t.equal(await store.sweepKept(), 1)
  const capped = await visit() ?? Infinity
  t.ok(capped > Date.now() + KEPT_REVISIT_MS - 5_000 && capped <= Date.now() + KEPT_REVISIT_MS, 'a session that lives longer does not put the next visit past KEPT_REVISIT_MS')
})

test('a ban without end: the sweep comes back when the markers expire, then forgets the user, whom an unban brings back', async (t) => {
  const { store, admin, tag, key, visit, due } = await setup(t, 'banned')
  await store.createSession({ tag, sid: newSessionId() }, data('k'), 'h0', 1)
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  await store.ban(tag, { until: null, reason: 'spam' }, 4000)
  await due()
  t.equal(await store.sweepKept(), 1)
  const markerAt = await visit() ?? 0
  t.ok(markerAt > Date.now() && markerAt <= Date.now() + 4_000, 'due when the ended session\'s marker expires (no session can start under the ban)')
  await sleep(markerAt - Date.now() + 50)
  t.equal(await store.sweepKept(), 1)
  t.same((await admin.hkeys(key)).sort(), ['!acl', '!ban'], 'the marker is gone, the ban and the roles stay')
  t.equal(await visit(), null, 'nothing left that expires, and no session can start: the user leaves the index')
  await store.unban(tag)
  t.ok(await visit() !== null, 'an unban lets sessions start in a key the roles keep: the user is back')
  await due()
  await store.sweepKept()
  t.ok((await visit() ?? 0) > Date.now() + KEPT_REVISIT_MS - 5_000, 'visited every KEPT_REVISIT_MS')
})

test('a service ban that ends years away sets the key\'s lifetime: the sweep visits the user while it lasts, and forgets it after', async (t) => {
  const { store, admin, tag, key, visit, due } = await setup(t, 'long-ban')
  const gone = { tag, sid: newSessionId() }
  await store.banService(tag, { service: 'pay', until: Date.now() + 10 * 365 * 86_400_000, reason: 'r' })
  await store.createSession(gone, data('secret-under-a-long-ban'), 'h0', 1)
  t.ok(await admin.pttl(key) > 300 * 86_400_000, 'the key lives as long as the ban')
  await sleep(1_100)
  await due()
  t.equal(await store.sweepKept(), 1)
  t.notOk((await admin.hvals(key)).some((v) => v.includes('secret-under-a-long-ban')), 'the expired session\'s session_key is gone')
  t.ok((await visit() ?? 0) > Date.now() + KEPT_REVISIT_MS - 5_000, 'back within KEPT_REVISIT_MS while the ban lasts: a login may start a session unseen')
  await store.banService(tag, { service: 'pay', until: Date.now() + 200, reason: 'r' })
  await sleep(250)
  await due()
  t.equal(await store.sweepKept(), 1)
  t.equal(await visit(), null, 'the ban over, the key lives as long as what it holds: the user leaves the index')
})

test('a user whose key is no longer kept for good leaves the index at the next sweep; its key expires on its own', async (t) => {
  const { store, admin, tag, key, visit, due } = await setup(t, 'former')
  await store.createSession({ tag, sid: newSessionId() }, data('k'), 'h0', 60)
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  await store.setAccess(tag, { roles: [], permissions: [] })
  t.ok(await admin.pttl(key) > 0)
  t.ok(await visit() !== null, 'in the index until a sweep looks')
  const other = userTag('wxapp', 'nobody')
  await store.banService(other, { service: 'pay', until: Date.now() + 60_000, reason: 'r' })
  await store.unbanService(other, 'pay')
  await due()
  t.equal(await store.sweepKept(), 2, 'both visited, the one whose key is gone too')
  t.equal(await visit(), null)
  t.equal(await visit(other), null, 'and forgotten')
})

test('a key kept for good before the sweep existed joins the index at its user\'s next login; other logins add nothing', async (t) => {
  const { store, admin, keys, tag, visit, entered } = await setup(t, 'older')
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  await entered(2)
  await admin.zrem(keys.kept[0], tag) // as an earlier version left it: kept for good, unknown to the index
  await admin.hdel(keys.kept[1], tag)
  await store.createSession({ tag, sid: newSessionId() }, data('k'), 'h0', 60)
  await until(async () => await visit() !== null, 'the login to enter it', 2_000, 10)
  t.ok(await visit() !== null, 'the login entered it')
  const scheduled = Date.now() + 600_000
  await admin.zadd(keys.kept[0], scheduled, tag)
  const ref = { tag, sid: newSessionId() }
  await store.createSession(ref, data('k'), 'h0', 60)
  t.equal(await store.rotateRefresh(ref, { generation: 0, presentedHash: 'h0', nextHash: 'h1', nonce: 'n', graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 }).then((r) => r.status), 'rotated')
  await sleep(200)
  t.equal(await visit(), scheduled, 'a user the index holds keeps its scheduled visit')
  await admin.zrem(keys.kept[0], tag)
  await store.rotateRefresh(ref, { generation: 1, presentedHash: 'h1', nextHash: 'h2', nonce: 'n2', graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })
  await until(async () => await visit() !== null, 'the refresh to enter it', 2_000, 10)
  t.ok(await visit() !== null, 'a refresh enters it too')
  const plain = userTag('wxapp', 'plain')
  await store.createSession({ tag: plain, sid: newSessionId() }, data('k'), 'h0', 60)
  await sleep(200)
  t.equal(await visit(plain), null, 'a user whose key expires is not entered')
})

test('the upgrade script of docs/operations.md enters the keys an earlier version kept for good, and nothing else', async (t) => {
  const { store, admin, keys, tag, visit, entered, prefix, url } = await setup(t, 'upgrade')
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  await entered(2)
  await admin.del(keys.kept[0], keys.kept[1]) // as an earlier version left it: kept for good, unknown to the index
  const plain = userTag('wxapp', 'plain')
  await store.createSession({ tag: plain, sid: newSessionId() }, data('k'), 'h0', 60)
  const docs = await readFile(new URL('../../../docs/operations.md', import.meta.url), 'utf8')
  const script = /```sh\n([^`]*--scan --pattern[^`]*)```/.exec(docs)?.[1]
  t.ok(script, 'the script is in docs/operations.md')
  execFileSync('bash', ['-c', script ?? 'false'], { env: { ...process.env, P: prefix, R: `redis-cli -c -u ${url}` } })
  t.equal(await visit(), 0, 'the key kept for good is in the index, due now')
  t.equal(await visit(plain), null, 'a key with a TTL is not')
  t.equal(await store.sweepKept(), 1, 'and the sweep visits it')
  t.ok((await visit() ?? 0) > Date.now(), 'then schedules it')
})

test('an operator\'s change enters the user first: if that fails, the change is not made', async (t) => {
  const { store, admin, keys, tag, key } = await setup(t, 'first')
  await admin.set(keys.kept[0], 'not a sorted set') // the index's writes now fail (WRONGTYPE)
  await t.rejects(store.setAccess(tag, { roles: ['admin'], permissions: [] }), { code: 'STORE_UNAVAILABLE' })
  t.equal(await admin.exists(key), 0, 'no roles written that the sweep would not know of')
  await t.rejects(store.ban(tag, { until: null, reason: 'r' }, 1000), { code: 'STORE_UNAVAILABLE' })
  t.equal(await admin.exists(key), 0, 'no ban either')
})

test('a change whose entry in the index answers after the deadline is not sent: its caller is told it failed', async (t) => {
  const redis = await startRedis(t)
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const keepSha = createHash('sha1').update(SCRIPTS.wxauthKeep).digest('hex')
  const call = client.call.bind(client) as (...args: string[]) => Promise<unknown>
  let slow = true
  Object.assign(client, { call: async (...args: string[]) => { if (slow && args[1] === keepSha) await sleep(400); return await call(...args) } })
  const store = createRedisStore({ client, keyPrefix: `${redis.prefix}slow:`, timeoutMs: 300, ownsClient: false })
  t.teardown(async () => await store.close())
  const tag = userTag('wxapp', 'slow')
  await t.rejects(store.setAccess(tag, { roles: ['admin'], permissions: [] }), { code: 'STORE_UNAVAILABLE' })
  await sleep(300)
  t.equal(await redisClient(t, redis.url).exists(keyNames(`${redis.prefix}slow:`).user(tag)), 0, 'the roles were not written')
  slow = false
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  t.equal(await redisClient(t, redis.url).exists(keyNames(`${redis.prefix}slow:`).user(tag)), 1, 'in time, they are')
})

test('a sweep that read an entry before an operator\'s change does not write its verdict over the change', async (t) => {
  const { store, admin, keys, tag, visit, due } = await setup(t, 'race')
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  await due()
  const [index, versions] = keys.kept
  const read = await admin.eval(SCRIPTS.wxauthKeptDue, 2, index, versions, '10') as string[]
  t.equal(read[0], tag, 'the sweep reads the user and its version')
  await store.setAccess(tag, { roles: ['admin', 'auditor'], permissions: [] }) // meanwhile, an operator's change
  const wrote = await admin.eval(SCRIPTS.wxauthKeptNext, 2, index, versions, tag, String(read[1]), '-1', '1000')
  t.equal(wrote, 0, 'the verdict, taken on the key as it was, is not written')
  t.ok(await visit() !== null, 'the user stays in the index')
  await due()
  const fresh = await admin.eval(SCRIPTS.wxauthKeptDue, 2, index, versions, '10') as string[]
  t.not(fresh[1], read[1], 'at a new version')
})

test('one gateway sweeps at a time, batch after batch; the timer sweeps on its own', async (t) => {
  const { store, admin, keys, visit, due } = await setup(t, 'batch')
  const tags = Array.from({ length: KEPT_SWEEP_BATCH + 5 }, (_, i) => userTag('wxapp', `u${i}`))
  for (const tag of tags) await store.setAccess(tag, { roles: ['r'], permissions: [] })
  await due()
  await admin.set(keys.keptLock, 'another gateway', 'PX', 10_000)
  t.equal(await store.sweepKept(), 0, 'another gateway holds the lock: nothing visited')
  await admin.del(keys.keptLock)
  const late = userTag('wxapp', 'late')
  const lateAt = Date.now() + 60_000
  await admin.zadd(keys.kept[0], lateAt, late) // as a sweep schedules one
  t.equal(await store.sweepKept(), KEPT_SWEEP_BATCH + 5, 'a full batch, then the next')
  t.ok((await visit(tags[0]) ?? 0) > Date.now(), 'visited')
  t.equal(await visit(late), lateAt, 'one not due yet waits')
  t.equal(await admin.exists(keys.keptLock), 0, 'the lock is released')

  const timed = await setup(t, 'timed', { sweepEveryMs: 50 })
  await timed.store.setAccess(timed.tag, { roles: ['r'], permissions: [] })
  await until(async () => (await timed.visit() ?? 0) > Date.now() + 1_000, 'the timer to sweep', 5_000, 25)
  t.ok((await timed.visit() ?? 0) > Date.now() + 1_000, 'the store\'s own timer swept the user')
})

test('a user whose visit fails is tried again later, and the others are visited; the failure is told, without the user', async (t) => {
  const told: Array<[number, Error]> = []
  const { store, admin, keys, visit, due } = await setup(t, 'stall', { onSweepFailed: (n, err) => { told.push([n, err]) } })
  const broken = userTag('wxapp', 'broken')
  const others = ['a', 'b', 'c'].map((n) => userTag('wxapp', n))
  for (const tag of [broken, ...others]) await store.setAccess(tag, { roles: ['r'], permissions: [] })
  await admin.del(keys.user(broken))
  await admin.set(keys.user(broken), 'a string, not a hash') // its visit fails (WRONGTYPE), as on a node that is down
  await due()
  t.equal(await store.sweepKept(), 4)
  for (const tag of others) t.ok((await visit(tag) ?? 0) > Date.now() + KEPT_REVISIT_MS - 5_000, 'visited')
  const retry = await visit(broken) ?? 0
  t.ok(retry > Date.now() + KEPT_RETRY_MS - 5_000 && retry <= Date.now() + KEPT_RETRY_MS, 'the broken one: again in KEPT_RETRY_MS, not first in every sweep')
  t.equal(told.length, 1, 'told once for the sweep')
  t.equal(told[0]?.[0], 1)
  t.equal((told[0]?.[1] as { code?: string }).code, 'STORE_UNAVAILABLE')
  t.notOk(JSON.stringify(told[0]?.[1]).includes(broken) || String(told[0]?.[1].message).includes(broken), 'the error names no user')
})

test('sweepWarning: one line at most every ten minutes, counting the failures between, naming no user', async (t) => {
  const lines: string[] = []
  const warn = sweepWarning((msg) => { lines.push(msg) }, 600_000)
  const err = Object.assign(new Error('The session store is unavailable; try again later'), { cause: new Error('ReplyError: WRONGTYPE Operation against a key holding the wrong kind of value') })
  warn(2, err)
  warn(3, err)
  t.equal(lines.length, 1)
  t.match(lines[0], /failed 2 time\(s\).*WRONGTYPE/)
  const quick = sweepWarning((msg) => { lines.push(msg) }, 0)
  quick(2, err)
  quick(3, new Error('plain'))
  t.match(lines[2], /failed 3 time\(s\).*first: plain\)/, 'the count restarts after each line')
})

test('close() stops a sweep under way after its current visit, and waits for it', async (t) => {
  const { store, admin, keys, due } = await setup(t, 'closing')
  for (let i = 0; i < 150; i++) await store.setAccess(userTag('wxapp', `c${i}`), { roles: ['r'], permissions: [] })
  await due()
  const sweeping = store.sweepKept()
  await until(async () => await admin.zcount(keys.kept[0], '-inf', Date.now()) < 150, 'a first visit', 5_000, 5)
  await store.close()
  const visited = await sweeping
  t.ok(visited < 150, `stopped early (${visited} of 150 visited)`)
  const left = await admin.zcount(keys.kept[0], '-inf', Date.now())
  await sleep(200)
  t.equal(await admin.zcount(keys.kept[0], '-inf', Date.now()), left, 'nothing visited after close() returned')
  t.equal(await store.sweepKept(), 0, 'a closed store does not sweep')
})

test('a sweep on a Redis that hangs fails fast with STORE_UNAVAILABLE; a lock it got too late is released; the timer\'s failures are told, never thrown', async (t) => {
  const redis = await startRedis(t, { own: true })
  const told: Error[] = []
  const open = async (keyPrefix: string, sweepEveryMs?: number) => {
    const store = createRedisStore({ client: await connectRedis({ url: redis.url, timeoutMs: 300 }), keyPrefix, timeoutMs: 300, ownsClient: true, onSweepFailed: (_, err) => { told.push(err) }, ...(sweepEveryMs !== undefined ? { sweepEveryMs } : {}) })
    t.teardown(async () => await store.close())
    await store.setAccess(userTag('wxapp', 'x'), { roles: ['r'], permissions: [] })
    return store
  }
  const store = await open('down:')
  await open('timer:', 20) // sweeps every 20 ms: an unhandled failure would end the test's process
  const admin = redisClient(t, redis.url)
  for (const keyPrefix of ['down:', 'timer:']) {
    const index = keyNames(keyPrefix).kept[0]
    for (const who of await admin.zrange(index, 0, -1)) await admin.zadd(index, 0, who)
  }
  redis.pause()
  t.teardown(() => { redis.resume() })
  const started = Date.now()
  await t.rejects(store.sweepKept(), { code: 'STORE_UNAVAILABLE' })
  t.ok(Date.now() - started < 1_500, `within the store's deadline (${Date.now() - started} ms)`)
  await until(async () => told.length > 0, 'the timer\'s failed sweeps to be told', 5_000, 10)
  t.ok(told.length > 0, 'the timer\'s failed sweeps are told')
  redis.resume()
  await until(async () => await admin.exists(keyNames('down:').keptLock) === 0, 'the late lock\'s release', 10_000, 10)
  t.equal(await admin.exists(keyNames('down:').keptLock), 0, 'the lock its SET took once Redis answered is released')
  t.equal(await store.sweepKept(), 1, 'back: the user is visited')
})
