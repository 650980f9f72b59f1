// Durability as an option (REDIS_WAIT_REPLICAS): opening a session, rotating a refresh token and every
// revocation or operator's change wait until replicas have the write, on real deployments with
// replicas; with the replica gone, the write stands, the caller is answered within the timeout and the
// shortfall is reported.
import { createClient, createCluster, createSentinel } from '@redis/client'
import { Cluster, Redis } from 'ioredis'
import { test, type Test } from 'tap'
import { newSessionId, userTag } from '../../../lib/ids.js'
import { createRedisStore } from '../../../lib/store/redis.js'
import { shortWarning } from '../../../lib/store/redis-wait.js'
import { disconnectClient, type RedisClient } from '../../../lib/store/redis-client.js'
import type { RotateInput, SessionStore } from '../../../lib/store/types.js'
import { buildApp, commandStats, redisClient, startRedis, startSim } from '../../helper.js'
import { startClusterWithReplicas, startSentinelWithReplica, until } from '../../redis-deployments.js'

const rot = (generation: number): RotateInput => ({ generation, presentedHash: `h${generation}`, nextHash: `h${generation + 1}`, nonce: 'n', graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })

/** A store that waits for one replica, and what it was told of shortfalls. */
function waitingStore (t: Test, client: RedisClient, timeoutMs = 100): { store: SessionStore, short: Array<[number, number]> } {
  const short: Array<[number, number]> = []
  const store = createRedisStore({ client, keyPrefix: `${newSessionId()}:`, timeoutMs: 1000, ownsClient: false, wait: { replicas: 1, timeoutMs, onShort: (acked, wanted) => short.push([acked, wanted]) } })
  t.teardown(async () => await store.close())
  return { store, short }
}

/** Opens a session and rotates it twice; how long the slowest step took. */
async function openAndRotate (store: SessionStore, name: string): Promise<number> {
  const ref = { tag: userTag('wxapp', name), sid: newSessionId() }
  let slowest = 0
  const timed = async <T>(step: () => Promise<T>): Promise<T> => {
    const started = performance.now()
    try { return await step() } finally { slowest = Math.max(slowest, performance.now() - started) }
  }
  const created = await timed(async () => await store.createSession(ref, { sub: name, openid: 'o', sessionKey: 'k' }, 'h0', 60))
  if (created.status !== 'created') throw new Error(created.status)
  for (const g of [0, 1]) {
    const r = await timed(async () => await store.rotateRefresh(ref, rot(g)))
    if (r.status !== 'rotated') throw new Error(r.status)
  }
  return slowest
}

test('Sentinel, master and replica: WAIT 1 is acknowledged; with the replica stopped, each write stands and is answered within the timeout, the shortfall told', async (t) => {
  const d = await startSentinelWithReplica(t)
  const client = createSentinel({ name: d.name, sentinelRootNodes: d.sentinels.map((port) => ({ host: '127.0.0.1', port })) })
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => { client.destroy() })
  const { store, short } = waitingStore(t, client, 200)
  const master = d.admin(d.master)
  await master.config('RESETSTAT')
  await openAndRotate(store, 'kept')
  t.same(short, [], 'the replica acknowledged every write')
  const first = (await commandStats(master, 'wait')).calls
  t.ok(first >= 1 && first <= 3, `one WAIT per write at most (writes answered together share one): ${first}`)
  // Many writes at once share WAITs.
  await master.config('RESETSTAT')
  await Promise.all(Array.from({ length: 40 }, async (_, i) => await openAndRotate(store, `crowd-${i}`)))
  const waits = (await commandStats(master, 'wait')).calls
  t.ok(waits < 120, `120 writes at once, ${waits} WAITs`)

  await d.kill(d.replica)
  const slowest = await openAndRotate(store, 'alone')
  t.ok(slowest < 2 * 200 + 150, `each write answered within two timeouts of 200 ms (slowest ${Math.round(slowest)} ms)`)
  t.ok(short.length >= 3 && short.every(([acked, wanted]) => acked === 0 && wanted === 1), `the shortfall told (${short.length} times, 0 of 1)`)
  const ref = { tag: userTag('wxapp', 'after'), sid: newSessionId() }
  await store.createSession(ref, { sub: 'after', openid: 'o', sessionKey: 'k' }, 'h0', 60)
  t.equal((await store.rotateRefresh(ref, rot(0))).status, 'rotated', 'the write stands: availability first')
  t.match(await store.rotateRefresh(ref, rot(0)), { status: 'predecessor', currentHash: 'h1' })
})

test('a Redis Cluster through ioredis: WAIT goes to the master of the key\'s slot; a node-redis cluster client is refused', async (t) => {
  const d = await startClusterWithReplicas(t)
  const nodes = d.masters.map((port) => ({ host: '127.0.0.1', port }))
  const cluster = new Cluster(nodes)
  cluster.on('error', () => {})
  t.teardown(() => { cluster.disconnect() })
  await new Promise((resolve) => cluster.once('ready', resolve))
  // 400 ms (under half the store's 1000): on a loaded 2-core machine a replica's ack took longer than 100.
  const { store, short } = waitingStore(t, cluster, 400)
  await Promise.all(Array.from({ length: 20 }, async (_, i) => await openAndRotate(store, `user-${i}`)))
  t.same(short, [], 'every master\'s replica acknowledged its writes')
  const waits = await Promise.all(d.masters.map(async (port) => (await commandStats(d.admin(port), 'wait')).calls))
  t.ok(waits.every((n) => n > 0), `each master got WAITs for its own slots (${waits.join(', ')})`)

  const nodeRedis = createCluster({ rootNodes: nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` })) })
  t.throws(() => createRedisStore({ client: nodeRedis, keyPrefix: 'x:', timeoutMs: 1000, ownsClient: false, wait: { replicas: 1, timeoutMs: 100 } }),
    { message: /REDIS_WAIT_REPLICAS .* node-redis cluster client .* ioredis Cluster/ })
})

test('a master without a replica: answered after the timeout, the write stands, the warning throttled and free of secrets', async (t) => {
  const redis = await startRedis(t)
  const { store, short } = waitingStore(t, redisClient(t, redis.url), 50)
  const slowest = await openAndRotate(store, 'solo')
  t.ok(slowest >= 45 && slowest < 300, `waited for the timeout, not more (${Math.round(slowest)} ms)`)
  t.same(short, [[0, 1], [0, 1], [0, 1]])
  const lines: string[] = []
  const warn = shortWarning((m) => lines.push(m), 60_000)
  for (let i = 0; i < 5; i++) warn(0, 1)
  t.equal(lines.length, 1, 'one line per minute here, however many writes')
  t.match(lines[0], /1 write\(s\) answered with fewer replicas than asked \(last: 0 of 1/)
})

test('a master without a replica under a steady stream of writes: one WAIT at a time, each shared by the writes answered before it, so none waits a queue of them', async (t) => {
  const redis = await startRedis(t)
  const admin = redisClient(t, redis.url)
  const { store, short } = waitingStore(t, redisClient(t, redis.url), 100)
  await store.ping()
  await admin.config('RESETSTAT')
  const latencies: number[] = []
  const started = performance.now()
  // 20 clients, each opening sessions one after another for 1.5 s.
  await Promise.all(Array.from({ length: 20 }, async (_, c) => {
    for (let i = 0; performance.now() - started < 1500; i++) {
      const at = performance.now()
      await store.createSession({ tag: userTag('wxapp', `stream-${c}`), sid: newSessionId() }, { sub: 's', openid: 'o', sessionKey: 'k' }, 'h0', 60)
      latencies.push(performance.now() - at)
    }
  }))
  const elapsed = performance.now() - started
  const waits = (await commandStats(admin, 'wait')).calls
  // Each WAIT takes its whole 100 ms here: one at a time, there is room for elapsed / 100 of them.
  t.ok(waits <= Math.ceil(elapsed / 100) + 1, `${waits} WAITs in ${Math.round(elapsed)} ms: one at a time`)
  t.ok(short.length === latencies.length, `each of the ${latencies.length} writes told short, and answered`)
  // A write waits for the WAIT it queued behind, then the next: two timeouts. Sent as each write was
  // answered, the WAITs queued behind each other, and a write behind several (4 to 7 timeouts).
  latencies.sort((a, b) => a - b)
  const median = latencies[latencies.length >> 1] as number
  const slowest = latencies[latencies.length - 1] as number
  t.ok(median < 250, `half the writes answered within two and a half timeouts (the median ${Math.round(median)} ms)`)
  t.ok(slowest < 450, `the slowest within four and a half (${Math.round(slowest)} ms), well within the store's deadline`)
})

test('every revocation and operator\'s change waits for replicas too: one a failover took back would let a revoked token in again', async (t) => {
  const redis = await startRedis(t)
  const { store, short } = waitingStore(t, redisClient(t, redis.url), 50)
  const tag = userTag('wxapp', 'revoked')
  const session = async (): Promise<{ tag: string, sid: string }> => {
    const ref = { tag, sid: newSessionId() }
    await store.createSession(ref, { sub: 'revoked', openid: 'o', sessionKey: 'k' }, 'h0', 60)
    return ref
  }
  const ref = await session()
  // Each is given a session opened just before it (and not timed).
  const writes: Array<[string, (fresh: { tag: string, sid: string }) => Promise<unknown>]> = [
    ['blacklist', async () => await store.blacklist(ref, 'jti-1', 60)],
    ['revokeSession (a logout, a reused refresh token)', async (fresh) => await store.revokeSession(fresh)],
    ['revokeUser', async () => await store.revokeUser(tag)],
    ['kick', async (fresh) => await store.kick(tag, [fresh.sid], 'kicked', 60_000)],
    ['ban', async () => await store.ban(tag, { until: null, reason: 'abuse' }, 60_000)],
    ['unban', async () => await store.unban(tag)],
    ['setAccess', async () => await store.setAccess(tag, { roles: [], permissions: [] })],
    ['banService', async () => await store.banService(tag, { service: 'pay', until: null, reason: 'fraud' })],
    ['unbanService', async () => await store.unbanService(tag, 'pay')]
  ]
  for (const [name, write] of writes) {
    const fresh = await session()
    const before = short.length
    const started = performance.now()
    await write(fresh)
    const ms = performance.now() - started
    t.ok(ms >= 45, `${name}: answered after its WAIT (${Math.round(ms)} ms)`)
    t.equal(short.length, before + 1, `${name}: one write fell short of the replica it waited for`)
  }
  short.length = 0
  await store.stepUp(ref, 'k2')
  t.same(short, [], 'a step-up does not wait: losing one costs the user a second proof, not a revocation')
  const gone = { tag, sid: newSessionId() }
  const started = performance.now()
  await store.blacklist(gone, 'jti-2', 60)
  t.equal(await store.kick(tag, [gone.sid], 'kicked', 60_000), 0)
  await store.ban(tag, { until: null, reason: 'abuse' }, 60_000)
  t.equal(await store.revokeUser(tag), 0)
  t.same(short.length, 1, 'what wrote nothing does not wait (a blacklisting or a kick of no live session, a revokeUser of a user with none): the ban alone did')
  t.ok(performance.now() - started < 250, 'so those three answered at once')
})

test('a replica 50 ms behind, its master killed just after logouts: revocations the replica lacks without the option, none with it', async (t) => {
  const lost: Record<string, number> = {}
  for (const [name, wait] of [['off', undefined], ['on', { replicas: 1, timeoutMs: 400 }]] as const) {
    const d = await startSentinelWithReplica(t, { replicaLagMs: 50 })
    const client = new Redis({ sentinels: d.sentinels.map((port) => ({ host: '127.0.0.1', port })), name: d.name })
    client.on('error', () => {})
    t.teardown(() => { client.disconnect() })
    const keyPrefix = `${newSessionId()}:`
    const store = createRedisStore({ client, keyPrefix, timeoutMs: 1000, ownsClient: false, wait })
    t.teardown(async () => await store.close())
    const refs = Array.from({ length: 20 }, (_, i) => ({ tag: userTag('wxapp', `gone-${i}`), sid: newSessionId() }))
    for (const ref of refs) await store.createSession(ref, { sub: ref.tag, openid: 'o', sessionKey: 'k' }, 'h0', 600)
    // The replica has every session before the logouts start.
    const onReplica = createRedisStore({ client: redisClient(t, `redis://127.0.0.1:${d.replica}`), keyPrefix, timeoutMs: 1000, ownsClient: false })
    t.teardown(async () => await onReplica.close())
    const alive = async (): Promise<number> => (await Promise.all(refs.map(async (ref) => await onReplica.getSession(ref)))).filter((s) => s !== null).length
    await until(async () => await alive() === refs.length, 'the replica to have every session', 5000)
    await Promise.all(refs.map(async (ref, i) => { await (i % 2 === 0 ? store.revokeSession(ref) : store.revokeUser(ref.tag)) }))
    await d.kill(d.master)
    lost[name] = await alive()
    t.comment(`REDIS_WAIT_REPLICAS ${name}: ${lost[name]} of ${refs.length} answered logouts missing on the replica`)
  }
  t.ok(Number(lost.off) > 0, 'without it, some are missing: the replica lags (else the next check would prove nothing)')
  t.equal(lost.on, 0, 'with the option on, every logout answered is on the replica a failover would promote')
})

/** The connections a Redis server has from clients named `name`. */
async function connectionsNamed (admin: ReturnType<typeof redisClient>, name: string): Promise<number> {
  const list = await admin.client('LIST') as string
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).length
}

test('a WAIT holds up no other command: durable writes and their WAITs have their own connection, closed with the store', async (t) => {
  const redis = await startRedis(t)
  const admin = redisClient(t, redis.url)
  const clients: Array<[string, () => Promise<RedisClient>]> = [
    ['node-redis', async () => await createClient({ url: redis.url, name: 'host-nr' }).connect() as unknown as RedisClient],
    ['ioredis', async () => new Redis(redis.url, { connectionName: 'host-io' }) as unknown as RedisClient]
  ]
  for (const [kind, make] of clients) {
    const client = await make()
    const name = kind === 'ioredis' ? 'host-io' : 'host-nr'
    const store = createRedisStore({ client, keyPrefix: `${newSessionId()}:`, timeoutMs: 2000, ownsClient: false, wait: { replicas: 1, timeoutMs: 600 } })
    await store.ping()
    t.equal(await connectionsNamed(admin, name), 2, `${kind}: the host's connection and the store's lane`)
    const ref = { tag: userTag('wxapp', kind), sid: newSessionId() }
    await store.createSession(ref, { sub: kind, openid: 'o', sessionKey: 'k' }, 'h0', 60)
    // No replica: the rotation's WAIT waits its 600 ms; the reads of other requests must not.
    const started = performance.now()
    const rotation = store.rotateRefresh(ref, rot(0)).then(() => performance.now() - started)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const readStarted = performance.now()
    t.match(await store.getSession(ref), { sub: kind }, `${kind}: read while a WAIT waits`)
    const readMs = performance.now() - readStarted
    t.ok(readMs < 200, `${kind}: the read answered in ${Math.round(readMs)} ms, not behind the WAIT`)
    t.ok(await rotation >= 550, `${kind}: the rotation itself waited for its WAIT`)
    await store.close()
    await until(async () => await connectionsNamed(admin, name) === 1, `${kind}: the lane closed with the store`, 5000)
    t.pass(`${kind}: the lane is closed with the store, the host's client is left open`)
    disconnectClient(client)
  }
})

test('the option is refused at boot where it cannot hold', async (t) => {
  const sim = await startSim(t)
  await t.rejects(buildApp(t, { sim, config: { REDIS_WAIT_REPLICAS: 1 } }), { message: /REDIS_WAIT_REPLICAS needs Redis/ }, 'the memory store')
  const redis = await startRedis(t)
  await t.rejects(buildApp(t, { sim, redisServer: redis, config: { REDIS_WAIT_REPLICAS: 1, REDIS_WAIT_TIMEOUT_MS: 600, STORE_TIMEOUT_MS: 1000 } }),
    { message: /REDIS_WAIT_TIMEOUT_MS must be under half of STORE_TIMEOUT_MS/ })
  const app = await buildApp(t, { sim, redisServer: redis, config: { REDIS_WAIT_REPLICAS: 1, REDIS_WAIT_TIMEOUT_MS: 20 } })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'wanda.1' } })
  t.equal(login.statusCode, 200, 'a master without its replica still answers (after the timeout)')
})
