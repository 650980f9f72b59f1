// The access check's read copy (ACCESS_CHECK=tracked) on a real Redis: the store contract holds with
// it, a hit sends nothing, another connection's change is seen within a bound, the bound on entries,
// a change racing a read, a dropped connection, a frozen Redis (the lease); a QR login's watch told by it.
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient } from '@redis/client'
import { createClient as createClient6 } from 'redis6'
import { test, type Test } from 'tap'
import { newSessionId, randomId, userTag, type SessionRef } from '../../../lib/ids.js'
import { connectRedis } from '../../../lib/store/redis-client.js'
import { accessCacheFor, openAccessCache, type AccessCache } from '../../../lib/store/redis-access-cache.js'
import { createRedisStore } from '../../../lib/store/redis.js'
import { QR_WATCH_MS, QR_WATCH_TRACKED_MS } from '../../../lib/store/redis-handoff.js'
import type { SessionStore } from '../../../lib/store/types.js'
import { commandStats, redisClient, startRedis, statusOf, type RedisServer } from '../../helper.js'
import { storeContract } from './contract.js'

/** A store as the gateway makes it with ACCESS_CHECK=tracked (its own client, the cache), closed at teardown. */
async function trackedStore (t: Test, url: string, keyPrefix: string, opts: { maxEntries?: number, timeoutMs?: number } = {}): Promise<{ store: SessionStore, cache: AccessCache }> {
  const timeoutMs = opts.timeoutMs ?? 1000
  const client = await connectRedis({ url, timeoutMs })
  const cache = await openAccessCache(client, { maxEntries: opts.maxEntries ?? 1000, timeoutMs })
  const store = createRedisStore({ client, keyPrefix, timeoutMs, ownsClient: true, accessCache: cache })
  t.teardown(async () => await store.close())
  return { store, cache }
}

/** A store without the cache: another gateway instance writing. */
async function strictStore (t: Test, url: string, keyPrefix: string): Promise<SessionStore> {
  const store = createRedisStore({ client: await connectRedis({ url, timeoutMs: 1000 }), keyPrefix, timeoutMs: 1000, ownsClient: true })
  t.teardown(async () => await store.close())
  return store
}

/** How many times Redis ran `command` (INFO commandstats): the server is the test's own. */
async function calls (redis: RedisServer, t: Test, command: string): Promise<number> {
  return (await commandStats(redisClient(t, redis.url), command)).calls
}

/** Polls `check` until it answers something else than `ok`; the time it took, in ms (at most `withinMs` + one check). */
async function untilRefused (check: () => Promise<unknown>, withinMs: number): Promise<{ ms: number, answer: unknown }> {
  const started = performance.now()
  for (;;) {
    const answer = statusOf(await check())
    if (answer !== 'ok' || performance.now() - started > withinMs) return { ms: performance.now() - started, answer }
    // A hit answers without I/O: let the invalidation in, as requests arriving on sockets do.
    await new Promise((resolve) => setImmediate(resolve))
  }
}

const session = async (store: SessionStore, sub: string): Promise<SessionRef> => {
  const ref = { tag: userTag('wxapp', sub), sid: newSessionId() }
  await store.createSession(ref, { sub, openid: `o-${sub}`, sessionKey: 'k' }, 'h0', 60)
  return ref
}

test('the store contract holds with the read copy on', async (t) => {
  const redis = await startRedis(t)
  storeContract(t, async (t) => {
    const { store } = await trackedStore(t, redis.url, `${redis.prefix}${newSessionId()}:`)
    return { store, advance: async (ms) => { await sleep(ms) } }
  })
})

test('a second check of the same token sends no command; strict sends one each time', async (t) => {
  const redis = await startRedis(t, { own: true })
  const { store, cache } = await trackedStore(t, redis.url, 'p:')
  const ref = await session(store, 'ann')
  const before = await calls(redis, t, 'hmget')
  t.equal(statusOf(await store.checkAccess(ref, 'j1')), 'ok')
  t.equal(await calls(redis, t, 'hmget'), before + 1, 'the first check reads')
  for (let i = 0; i < 10; i++) t.equal(statusOf(await store.checkAccess(ref, 'j1')), 'ok')
  t.equal(await calls(redis, t, 'hmget'), before + 1, 'ten more: no read')
  t.equal(cache.size, 1)
  const strict = await strictStore(t, redis.url, 'p:')
  for (let i = 0; i < 5; i++) t.equal(statusOf(await strict.checkAccess(ref, 'j1')), 'ok')
  t.equal(await calls(redis, t, 'hmget'), before + 6, 'strict: one read per check')
})

test('a change made through another connection is seen within a bound: revoke, blacklist, kick, ban, roles', async (t) => {
  const redis = await startRedis(t)
  const { store: b } = await trackedStore(t, redis.url, redis.prefix)
  const a = await strictStore(t, redis.url, redis.prefix)
  const changes: Array<[string, (ref: SessionRef) => Promise<unknown>, unknown]> = [
    ['revokeSession', async (ref) => await a.revokeSession(ref), 'revoked'],
    ['blacklist', async (ref) => await a.blacklist(ref, 'j', 60), 'revoked'],
    ['kick', async (ref) => await a.kick(ref.tag, [ref.sid], 'fraud', 60_000), 'kicked'],
    ['ban', async (ref) => await a.ban(ref.tag, { until: null, reason: 'spam' }, 60_000), 'banned']
  ]
  const delays: number[] = []
  for (let i = 0; i < 30; i++) {
    for (const [name, change, expected] of changes) {
      const ref = await session(a, `${name}${i}`)
      await b.checkAccess(ref, 'j')
      t.equal(statusOf(await b.checkAccess(ref, 'j')), 'ok', 'cached')
      await change(ref)
      const { ms, answer } = await untilRefused(async () => await b.checkAccess(ref, 'j'), 100)
      delays.push(ms)
      const reason = typeof answer === 'object' && answer !== null ? (answer as { reason: string }).reason : answer
      if (reason !== expected) t.fail(`${name} ${i}: ${JSON.stringify(answer)} after ${ms} ms`)
    }
  }
  delays.sort((x, y) => x - y)
  t.ok((delays.at(-1) as number) < 100, `120 changes, each refused within 100 ms (p50 ${delays[60]?.toFixed(2)} ms, max ${delays.at(-1)?.toFixed(2)} ms)`)
  const ref = await session(a, 'roles')
  await b.checkAccess(ref, 'j')
  await a.setAccess(ref.tag, { roles: ['admin'], permissions: [] })
  const deadline = Date.now() + 100
  let roles: readonly string[] = []
  // A hit answers without I/O: the loop lets the invalidation in between checks, as requests do.
  while (roles.length === 0 && Date.now() < deadline) {
    roles = (await b.checkAccess(ref, 'j') as { roles: readonly string[] }).roles
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.same(roles, ['admin'], 'a role granted elsewhere is seen')
})

test('the bound: N entries at most, about the least recently used users go first', async (t) => {
  const redis = await startRedis(t, { own: true })
  const { store, cache } = await trackedStore(t, redis.url, 'p:', { maxEntries: 5 })
  const refs = await Promise.all(Array.from({ length: 8 }, async (_, i) => await session(store, `u${i}`)))
  for (const ref of refs) await store.checkAccess(ref, 'j')
  t.equal(cache.size, 5, '8 users checked, 5 kept')
  const before = await calls(redis, t, 'hmget')
  for (const ref of refs.slice(3)) await store.checkAccess(ref, 'j')
  t.equal(await calls(redis, t, 'hmget'), before, 'the 5 most recent are hits')
  await store.checkAccess(refs[0] as SessionRef, 'j')
  t.equal(await calls(redis, t, 'hmget'), before + 1, 'an evicted one is read again')
  t.equal(cache.size, 5)
  // One user's many tokens: the bound holds too.
  for (let j = 0; j < 12; j++) await store.checkAccess(refs[1] as SessionRef, `j${j}`)
  t.equal(cache.size, 5)
})

test('a change racing a read never leaves a stale entry', async (t) => {
  const redis = await startRedis(t)
  const { store: b } = await trackedStore(t, redis.url, redis.prefix)
  const a = await strictStore(t, redis.url, redis.prefix)
  const late: string[] = []
  for (let i = 0; i < 200; i++) {
    const ref = await session(a, `race${i}`)
    // The read and the revoke leave together; whichever Redis runs first, the read must not be kept as live.
    await Promise.all([b.checkAccess(ref, 'j'), i % 2 === 0 ? a.revokeSession(ref) : a.ban(ref.tag, { until: null, reason: 'x' }, 1000)])
    const { ms, answer } = await untilRefused(async () => await b.checkAccess(ref, 'j'), 100)
    if (answer === 'ok') late.push(`${i}: still live after ${ms} ms`)
  }
  t.same(late, [], '200 races, each refused within 100 ms after the change returned')
})

/** Waits (turning the event loop) until `ready()`, at most `ms`; whether it came. */
async function eventually (ready: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!ready() && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
  return ready()
}

test('a dropped tracked connection: flushed when its close arrives, nothing kept before it survives', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  const { store: b, cache } = await trackedStore(t, redis.url, 'p:')
  const a = await strictStore(t, redis.url, 'p:')
  const ref = await session(a, 'cut')
  await b.checkAccess(ref, 'j')
  t.equal(cache.size, 1)
  // Kill the tracked connection (flags=t in CLIENT LIST), then change the key while it reconnects:
  // Redis no longer tracks the key for it, so no invalidation will come.
  const list = String(await admin.call('CLIENT', 'LIST'))
  const ids = list.split('\n').filter((line) => /\bflags=t\b/.test(line)).map((line) => /\bid=(\d+)/.exec(line)?.[1])
  t.equal(ids.length, 1, 'one tracking connection (flags=t)')
  await admin.call('CLIENT', 'KILL', 'ID', ids[0] as string)
  t.ok(await eventually(() => cache.size === 0, 1000), 'flushed once the close arrived')
  await a.revokeSession(ref)
  t.equal(await b.checkAccess(ref, 'j'), 'revoked', 'the change is seen')
  await eventually(() => false, 200) // reconnected meanwhile
  t.equal(await b.checkAccess(ref, 'j'), 'revoked', 'and after the reconnect')
})

test('Redis restarted empty: 503 once the close arrived, then the token is refused (not a remembered answer)', async (t) => {
  const redis = await startRedis(t, { own: true })
  const { store, cache } = await trackedStore(t, redis.url, 'p:', { timeoutMs: 300 })
  const ref = await session(store, 'gone')
  await store.checkAccess(ref, 'j')
  t.equal(statusOf(await store.checkAccess(ref, 'j')), 'ok')
  await redis.stop()
  t.ok(await eventually(() => cache.size === 0, 1000), 'flushed once the close arrived')
  for (let i = 0; i < 5; i++) await t.rejects(store.checkAccess(ref, 'j'), { code: 'STORE_UNAVAILABLE' }, 'never a remembered answer while down')
  await redis.start()
  let answer: unknown
  const deadline = Date.now() + 10_000
  do {
    answer = await store.checkAccess(ref, 'j').catch((err: { code: string }) => err.code)
    if (answer === 'STORE_UNAVAILABLE') await sleep(20)
  } while (answer === 'STORE_UNAVAILABLE' && Date.now() < deadline)
  t.equal(answer, 'revoked', 'the session is gone with the data')
})

test('a frozen Redis (no close, no invalidation): hits stop within the lease, then 503', async (t) => {
  const redis = await startRedis(t, { own: true })
  const { store } = await trackedStore(t, redis.url, 'p:', { timeoutMs: 300 })
  const ref = await session(store, 'frozen')
  await store.checkAccess(ref, 'j')
  redis.pause()
  t.teardown(() => { redis.resume() })
  const paused = performance.now()
  let lastHit = 0
  for (;;) {
    const answer = await store.checkAccess(ref, 'j').catch((err: { code: string }) => err.code)
    if (answer === 'STORE_UNAVAILABLE') break
    lastHit = performance.now() - paused
    if (lastHit > 2000) break
    await sleep(10)
  }
  t.ok(lastHit < 600, `the last hit came ${lastHit.toFixed(0)} ms after Redis froze (lease 500 ms)`)
  redis.resume()
})

test('a host\'s node-redis client (5, RESP2; 6, RESP3) gets the read copy on a connection of the cache\'s own; ioredis runs strict', async (t) => {
  const redis = await startRedis(t, { own: true })
  const config = { ACCESS_CHECK: 'tracked' as const, ACCESS_CACHE_MAX_ENTRIES: 100, STORE_TIMEOUT_MS: 1000 }
  for (const [name, client] of [['node-redis 5', createClient({ url: redis.url })], ['node-redis 6', createClient6({ url: redis.url })]] as const) {
    await client.connect()
    const { accessCache } = await accessCacheFor(client, config)
    const store = createRedisStore({ client, keyPrefix: 'host:', timeoutMs: 1000, ownsClient: false, ...(accessCache === undefined ? {} : { accessCache }) })
    t.teardown(async () => { await store.close(); client.destroy() })
    t.ok(accessCache !== undefined, `${name}: tracked`)
    const ref = await session(store, name.replace(/\W/g, ''))
    await store.checkAccess(ref, 'j')
    const before = await calls(redis, t, 'hmget')
    t.equal(statusOf(await store.checkAccess(ref, 'j')), 'ok')
    t.equal(await calls(redis, t, 'hmget'), before, `${name}: a hit sends nothing`)
    await store.revokeSession(ref)
    t.equal(await store.checkAccess(ref, 'j'), 'revoked', `${name}: its own write is seen at once`)
  }
  t.match(await accessCacheFor(redisClient(t, redis.url), config), { strictBecause: /ioredis/ })
  t.same(await accessCacheFor(redisClient(t, redis.url), { ...config, ACCESS_CHECK: 'strict' }), {})
})

test('a web QR login watched on one instance is told of another\'s step at once, not at its next poll; also after the tracked connection was dropped', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  const { store: watching } = await trackedStore(t, redis.url, 'q:')
  const stepping = await strictStore(t, redis.url, 'q:')
  const id = randomId(16)
  await stepping.createQr(id, { appid: 'wxapp', secretHash: 'secret-digest', ttlMs: 60_000, ip: '203.0.113.9', userAgent: 'Browser/1.0' }, 60_000)
  let heard = 0
  const polls = await calls(redis, t, 'hget') // the watchers' poll: one HGET of the version each
  const stop = watching.watchQr(id, () => { heard++ })
  t.teardown(stop)
  t.ok(await eventually(() => heard === 1, 1000), 'told once when the watch starts (what changed before it)')
  /** ms from `step` until the watcher is told again. */
  const toldAfter = async (step: () => Promise<unknown>): Promise<number> => {
    const before = heard
    const started = performance.now()
    await step()
    t.ok(await eventually(() => heard > before, QR_WATCH_TRACKED_MS), 'told')
    return performance.now() - started
  }
  const alice = { tag: userTag('wxapp', 'alice'), sid: newSessionId() }
  const scanned = await toldAfter(async () => await stepping.stepQr(id, 'scan', 'wxapp', alice))
  t.ok(scanned < QR_WATCH_MS / 2, `the scan pushed, not polled (${scanned.toFixed(0)} ms; polls every ${QR_WATCH_TRACKED_MS} ms)`)
  const list = String(await admin.call('CLIENT', 'LIST'))
  const ids = list.split('\n').filter((line) => /\bflags=t\b/.test(line)).map((line) => /\bid=(\d+)/.exec(line)?.[1])
  const before = heard
  await admin.call('CLIENT', 'KILL', 'ID', ids[0] as string)
  t.ok(await eventually(() => heard > before, 2000), 'told again once the connection is back: a change meanwhile pushed nothing')
  await sleep(50)
  const confirmed = await toldAfter(async () => await stepping.stepQr(id, 'confirm', 'wxapp', alice))
  t.ok(confirmed < QR_WATCH_MS / 2, `the key was armed again: pushed (${confirmed.toFixed(0)} ms)`)
  const flushed = await toldAfter(async () => await admin.call('FLUSHALL'))
  t.ok(flushed < QR_WATCH_MS / 2, `Redis dropping all (an invalidation of no key) tells every watcher (${flushed.toFixed(0)} ms)`)
  await stepping.createQr(id, { appid: 'wxapp', secretHash: 'secret-digest', ttlMs: 60_000, ip: '203.0.113.9', userAgent: 'Browser/1.0' }, 60_000)
  await toldAfter(async () => await stepping.stepQr(id, 'scan', 'wxapp', alice))
  await toldAfter(async () => await stepping.stepQr(id, 'confirm', 'wxapp', alice))
  stop()
  const after = heard
  t.match(await stepping.collectQr(id, 'secret-digest'), { status: 'ok' })
  await sleep(100)
  t.equal(heard, after, 'nothing after the watch stopped')
  t.equal(await calls(redis, t, 'hget'), polls, 'told every time without a poll')
})

test('a Redis that wants a password the URL lacks: the error blames the credentials, not tracking', async (t) => {
  const redis = await startRedis(t, { own: true })
  await redisClient(t, redis.url).config('SET', 'requirepass', 'a-password-of-its-own')
  const client = createClient({ url: redis.url, socket: { reconnectStrategy: false } })
  client.on('error', () => {})
  await client.connect() // sends no AUTH: its commands fail with NOAUTH
  t.teardown(() => { client.destroy() })
  await t.rejects(openAccessCache(client, { maxEntries: 10, timeoutMs: 200 }), { message: /^Redis refused the connection's credentials \(NOAUTH .*\): check the user and password in REDIS_URL$/ })
  const other = createClient({ url: redis.url.replace('redis://', 'redis://default:a-password-of-its-own@'), RESP: 2 })
  other.on('error', () => {})
  await other.connect()
  t.teardown(() => { other.destroy() })
  await other.sendCommand(['ACL', 'SETUSER', 'untracked', 'on', '>pw', '~*', '+@all', '-client'])
  const refused = createClient({ url: redis.url.replace('redis://', 'redis://untracked:pw@') })
  refused.on('error', () => {})
  await refused.connect()
  t.teardown(() => { refused.destroy() })
  await t.rejects(openAccessCache(refused, { maxEntries: 10, timeoutMs: 200 }), { message: /^ACCESS_CHECK=tracked: cannot open the tracked connection .*set ACCESS_CHECK=strict/ }, 'tracking itself refused: the advice stands')
})
