import { setTimeout as sleep } from 'node:timers/promises'
import { createClient, createCluster, RESP_TYPES } from '@redis/client'
import { test, type Test } from 'tap'
import { StoreUnavailableError } from '../../../lib/errors.js'
import { FIELDS_PER_SESSION, keyNames, SCANLESS_FIELDS } from '../../../lib/store/redis-layout.js'
import { connectRedis, hasOfflineQueue, type RedisClient } from '../../../lib/store/redis-client.js'
import { createRedisStore } from '../../../lib/store/redis.js'
import type { RotateInput, SessionStore } from '../../../lib/store/types.js'
import { digest, newSessionId, userTag } from '../../../lib/ids.js'
import { commandStats, freePort, redisClient, startRedis, statusOf } from '../../helper.js'
import { storeContract } from './contract.js'

/** A store on its own node-redis connection (as the gateway makes it), closed at teardown. */
async function ownedStore (t: Test, url: string, keyPrefix: string, timeoutMs = 1000): Promise<SessionStore> {
  const store = createRedisStore({ client: await connectRedis({ url, timeoutMs }), keyPrefix, timeoutMs, ownsClient: true })
  t.teardown(async () => await store.close())
  return store
}

/** A store of its own (under its key prefix) on a Redis of the test's, a client to look with, and one user's tag and key. */
async function oneUser (t: Test, name: string): Promise<{ store: SessionStore, admin: ReturnType<typeof redisClient>, prefix: string, tag: string, key: string }> {
  const redis = await startRedis(t)
  const prefix = `${redis.prefix}${name}:`
  const store = await ownedStore(t, redis.url, prefix)
  const tag = userTag('wxapp', name)
  return { store, admin: redisClient(t, redis.url), prefix, tag, key: keyNames(prefix).user(tag) }
}

// The Redis store's clock is Redis's own (TIME, and key expiry), which a test cannot move: letting
// time pass means waiting for it. The contract keeps its TTLs near a second (sessions take whole
// seconds), about nine seconds of waiting per run.
test('redis store honours the store contract, on the gateway\'s own client (node-redis), a host\'s RESP3 node-redis client and a host\'s ioredis client, and by EVALSHA', async (t) => {
  const redis = await startRedis(t)
  t.test('node-redis, owned', async (t) => {
    storeContract(t, async (t) => {
      return { store: await ownedStore(t, redis.url, `${redis.prefix}${newSessionId()}:`), advance: async (ms) => { await sleep(ms) } }
    })
  })
  t.test('node-redis speaking RESP3 (a hash answered as a map), passed in', async (t) => {
    storeContract(t, async (t) => {
      const client = createClient({ url: redis.url, RESP: 3 })
      await client.connect()
      const store = createRedisStore({ client, keyPrefix: `${redis.prefix}${newSessionId()}:`, timeoutMs: 1000, ownsClient: false })
      t.teardown(async () => { await store.close(); client.destroy() })
      return { store, advance: async (ms) => { await sleep(ms) } }
    })
  })
  t.test('ioredis, passed in', async (t) => {
    storeContract(t, async (t) => {
      const store = createRedisStore({ client: redisClient(t, redis.url), keyPrefix: `${redis.prefix}${newSessionId()}:`, timeoutMs: 1000, ownsClient: false })
      t.teardown(async () => await store.close())
      return { store, advance: async (ms) => { await sleep(ms) } }
    })
  })
  t.test('node-redis, owned, on a Redis that refuses functions (its scripts by EVALSHA, as on Redis 6)', async (t) => {
    const user = `nofn${newSessionId()}`
    await redisClient(t, redis.url).call('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all', '-fcall', '-function')
    storeContract(t, async (t) => {
      return { store: await ownedStore(t, redis.url.replace('redis://', `redis://${user}:pw@`), `${redis.prefix}${newSessionId()}:`), advance: async (ms) => { await sleep(ms) } }
    })
  })
})

test('a client that is neither ioredis nor node-redis, or node-redis in legacy mode, is refused at once', async (t) => {
  const legacy = createClient().legacy()
  for (const client of [{}, legacy]) {
    t.throws(() => createRedisStore({ client: client as unknown as RedisClient, keyPrefix: 'x:', timeoutMs: 1000, ownsClient: false }),
      { message: /expected an ioredis client or cluster, or a node-redis client, cluster or sentinel \(not in legacy mode\)/ })
  }
})

test('a host node-redis client that maps replies to Buffers still works: the store asks for strings', async (t) => {
  const redis = await startRedis(t)
  const host = createClient({ url: redis.url, commandOptions: { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } } })
  host.on('error', () => {})
  await host.connect()
  t.teardown(() => { if (host.isOpen) host.destroy() })
  const store = createRedisStore({ client: host, keyPrefix: redis.prefix, timeoutMs: 1000, ownsClient: false })
  const ref = { tag: userTag('wxapp', 'buffy'), sid: newSessionId() }
  await store.createSession(ref, { sub: 'buffy', openid: 'o-buffy', sessionKey: 'k' }, 'h0', 60)
  t.equal(statusOf(await store.checkAccess(ref, 'j')), 'ok')
  t.match(await store.getSession(ref), { openid: 'o-buffy', sessionKey: 'k' })
  const r = await store.rotateRefresh(ref, { generation: 0, presentedHash: 'h0', nextHash: 'h1', nonce: 'n1', graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })
  t.same(r.status === 'rotated' && r.session, { sub: 'buffy', openid: 'o-buffy' })
  t.equal(await store.claimCode(digest('c'), 1000), 'claimed')
})

test('closing while Redis hangs: operations in flight fail at their deadline, the connection is dropped, nothing holds the process', async (t) => {
  const redis = await startRedis(t, { own: true })
  const client = await connectRedis({ url: redis.url, timeoutMs: 300 })
  const store = createRedisStore({ client, keyPrefix: redis.prefix, timeoutMs: 300, ownsClient: true })
  const ref = { tag: userTag('wxapp', 'hung'), sid: newSessionId() }
  redis.pause()
  t.teardown(() => redis.resume())
  // Expected to fail while close() waits, so the expectation is attached before.
  const inFlight = t.rejects(store.checkAccess(ref, 'j'), StoreUnavailableError, 'the operation in flight failed')
  const started = Date.now()
  await store.close()
  t.ok(Date.now() - started < 1000, `close() returned in ${Date.now() - started} ms`)
  await inFlight
  t.equal(client.isOpen, false)
  redis.resume()
  const admin = redisClient(t, redis.url)
  let others = -1
  for (let i = 0; i < 40 && others !== 0; i++) {
    others = String(await admin.client('LIST')).trim().split('\n').length - 1
    if (others !== 0) await sleep(50)
  }
  t.equal(others, 0, 'the server sees no connection but the admin\'s: the socket was closed')
})

test('a REDIS_URL that does not parse is refused without its text (the password stays out of errors and logs)', async (t) => {
  const err = await connectRedis({ url: 'redis://:s3cr#t-pass@127.0.0.1:6390', timeoutMs: 300 }).then(() => null, (e: Error) => e)
  t.match(err?.message, /^REDIS_URL: cannot connect to Redis \(not a valid URL/)
  t.equal(err?.cause, undefined, 'no cause that could carry the URL')
  t.notMatch(JSON.stringify(err) + String(err?.message) + String(err?.stack), /s3cr/)
})

test('every key the store writes has a TTL; a user is one key under its hash tag', async (t) => {
  const redis = await startRedis(t)
  const prefix = `${redis.prefix}ttl:`
  const store = await ownedStore(t, redis.url, prefix)
  const tag = userTag('wxapp', 'alice')
  const ref = { tag, sid: newSessionId() }
  const other = { tag, sid: newSessionId() }
  await store.createSession(other, { sub: 'user-42', openid: 'o-alice', sessionKey: 'k' }, 'h0', 600)
  // Digests as long as real ones (22 characters), so the encoding check below means something.
  const h = (g: number): string => `h${g}`.padEnd(22, 'x')
  await store.createSession(ref, { sub: 'o-alice', openid: 'o-alice', sessionKey: 'k' }, h(0), 60)
  for (let g = 0; g < 2; g++) await store.rotateRefresh(ref, { generation: g, presentedHash: h(g), nextHash: h(g + 1), nonce: `n${g + 1}`.padEnd(16, 'x'), graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })
  await store.blacklist(ref, 'jti', 30)
  await store.hit('1.2.3.4', 60_000)
  await store.claimCode(digest('c1'), 5000)
  await store.claimCode(digest('c2'), 5000)
  await store.settleCode(digest('c2'), true, 5000)
  const inspect = redisClient(t, redis.url)
  const keys = await inspect.keys(`${prefix}*`)
  t.equal(keys.length, 4, 'the user, two code markers, a rate-limit counter')
  for (const k of keys) t.ok((await inspect.pttl(k)) > 0, `${k} has a TTL`)
  const userKey = keyNames(prefix).user(tag)
  t.equal(userKey, `${prefix}{${tag}}`, 'the user key is its hash tag')
  t.ok((await inspect.pttl(userKey)) > 590_000, 'the user key lives as long as its longest session')
  const fields = (sid: string): string[] => [sid, `${sid}o`, `${sid}k`]
  t.same((await inspect.hkeys(userKey)).sort(), [...fields(ref.sid), `${ref.sid}p`, ...fields(other.sid), 'b:jti'].sort(), 'three fields, four once refreshed')
  t.equal(await inspect.object('ENCODING', userKey), 'listpack', 'compact encoding: every value fits in 64 bytes')
  const [hot, p, fresh, k] = await inspect.hmget(userKey, ref.sid, `${ref.sid}p`, other.sid, `${other.sid}k`)
  t.match(hot?.split('\u0001'), [/^\d{13}$/, h(2), '2'], 'expiry, the current digest, its generation')
  t.match(p?.split('\u0001'), [/^\d{13}$/, 'n2'.padEnd(16, 'x')], 'when it was issued, with what nonce (no digest of an older token)')
  t.same(fresh?.split('\u0001').slice(1), ['h0'], 'a new session: no generation stored (0), never rotated')
  t.equal(k?.split('\u0001')[2], 'user-42', 'a sub other than the openid is stored')
  t.equal((await inspect.hget(userKey, `${ref.sid}k`))?.split('\u0001')[2], '', 'a sub equal to the openid is not stored twice')
  t.match(await store.getSession(ref), { sub: 'o-alice', openid: 'o-alice', sessionKey: 'k' })
  t.match(await store.getSession(other), { sub: 'user-42', openid: 'o-alice' })
  const before = await inspect.memory('USAGE', userKey)
  for (let g = 2; g < 40; g++) t.equal((await store.rotateRefresh(ref, { generation: g, presentedHash: h(g), nextHash: h(g + 1), nonce: `n${g + 1}`.padEnd(16, 'x'), graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })).status, 'rotated')
  t.equal(await inspect.object('ENCODING', userKey), 'listpack', 'still compact after many refreshes')
  t.equal(await inspect.memory('USAGE', userKey), before, 'and no larger: nothing accumulates per refresh')
})

test('roles and permanent service bans keep the user key for good; without them it expires with its sessions', async (t) => {
  const redis = await startRedis(t)
  const prefix = `${redis.prefix}keep:`
  const store = await ownedStore(t, redis.url, prefix)
  const inspect = redisClient(t, redis.url)
  const tag = userTag('wxapp', 'keeper')
  const key = keyNames(prefix).user(tag)
  const ref = { tag, sid: newSessionId() }
  await store.createSession(ref, { sub: 'keeper', openid: 'o', sessionKey: 'k' }, 'h0', 60)
  t.ok(await inspect.pttl(key) > 0, 'a plain user expires')
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  t.equal(await inspect.pttl(key), -1, 'a user with roles does not')
  await store.createSession({ tag, sid: newSessionId() }, { sub: 'keeper', openid: 'o', sessionKey: 'k' }, 'h0', 60)
  await store.rotateRefresh(ref, { generation: 0, presentedHash: 'h0', nextHash: 'h1', nonce: 'n1', graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })
  await store.blacklist(ref, 'jti', 30)
  t.equal(await inspect.pttl(key), -1, 'not by a login, a refresh or a blacklisted token either')
  await store.setAccess(tag, { roles: [], permissions: [] })
  const pttl = await inspect.pttl(key)
  t.ok(pttl > 0 && pttl <= 60_000, 'roles forgotten: the key lives as long as its sessions again')
  await store.banService(tag, { service: 'pay', until: null, reason: 'r' })
  await store.createSession({ tag, sid: newSessionId() }, { sub: 'keeper', openid: 'o', sessionKey: 'k' }, 'h0', 60)
  t.equal(await inspect.pttl(key), -1, 'a service ban for good keeps it too, through a login')
  await store.unbanService(tag, 'pay')
  await store.banService(tag, { service: 'pay', until: Date.now() + 600_000, reason: 'r' })
  t.ok(await inspect.pttl(key) > 590_000, 'a temporary one keeps it until the ban ends')
  const member = userTag('wxapp', 'member')
  await store.createSession({ tag: member, sid: newSessionId() }, { sub: 'member', openid: 'm', sessionKey: 'k', access: { roles: ['member'], permissions: [] } }, 'h0', 60)
  const memberTtl = await inspect.pttl(keyNames(prefix).user(member))
  t.ok(memberTtl > 0 && memberTtl <= 60_000, 'roles from resolveUser at login do not keep the key: a host giving every user a role must not keep every user')
  const other = userTag('wxapp', 'only-roles')
  await store.setAccess(other, { roles: ['r'], permissions: [] })
  await store.setAccess(other, { roles: [], permissions: [] })
  t.equal(await inspect.exists(keyNames(prefix).user(other)), 0, 'a key left with nothing is deleted')
})

test('a key kept for good keeps no expired session: fixTtl deletes what expired before it keeps the rest', async (t) => {
  const redis = await startRedis(t)
  const prefix = `${redis.prefix}kept:`
  const store = await ownedStore(t, redis.url, prefix)
  const inspect = redisClient(t, redis.url)
  const tag = userTag('wxapp', 'kept')
  const ref = { tag, sid: newSessionId() }
  await store.createSession(ref, { sub: 'kept', openid: 'o', sessionKey: 'secret-session-key' }, 'h0', 1)
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  await sleep(1_100)
  await store.banService(tag, { service: 'pay', until: null, reason: 'r' })
  const key = keyNames(prefix).user(tag)
  t.same((await inspect.hkeys(key)).sort(), ['!acl', '!sban'], 'the expired session, its session_key with it, is gone')
  t.equal(await inspect.pttl(key), -1)
})

test('an expired session is swept whole by the next pass over the user, its step-up time included; a login that cannot reach the limit skips the pass', async (t) => {
  const redis = await startRedis(t)
  const prefix = `${redis.prefix}sweep:`
  const store = await ownedStore(t, redis.url, prefix)
  const inspect = redisClient(t, redis.url)
  const tag = userTag('wxapp', 'sweeper')
  const fields = async (): Promise<string[]> => await inspect.hkeys(keyNames(prefix).user(tag))
  const data = { sub: 'sweeper', openid: 'o', sessionKey: 'k' }
  const policy = { exclusive: '' as const, maxSessions: 10, accessTtlMs: 1000 }
  await store.createSession({ tag, sid: newSessionId() }, data, 'h0', 60, policy) // keeps the key alive
  const old = { tag, sid: newSessionId() }
  await store.createSession(old, { ...data, device: { deviceType: 'mp' } }, 'h0', 1, policy)
  await store.stepUp(old, 'k2')
  t.ok((await fields()).includes(`${old.sid}p`), 'the step-up time is in the rotation field')
  await sleep(1_100)
  await store.createSession({ tag, sid: newSessionId() }, data, 'h0', 60, policy)
  t.ok((await fields()).includes(old.sid), 'three sessions of ten allowed: the login skipped the pass, the expired session waits')
  t.equal(await store.checkAccess(old, 'j'), 'revoked', 'and is never answered as live')
  t.same((await store.listSessions(tag)).map((s) => s.sid).includes(old.sid), false, 'nor listed')
  await store.blacklist(old, 'jti-of-old', 60)
  t.notOk((await fields()).includes('b:jti-of-old'), 'nor given a blacklist entry (it would keep the key alive for nothing)')
  await store.createSession({ tag, sid: newSessionId() }, data, 'h0', 60, { ...policy, maxSessions: 2 })
  t.same((await fields()).filter((f) => f.startsWith(old.sid)), [], 'a login that may reach the limit reads the user: nothing of the expired session is left')
})

test('a blacklist entry is answered past its TTL until a pass over the user forgets it: its expiry is by Redis\' clock, not the gateway\'s', async (t) => {
  const redis = await startRedis(t)
  const store = await ownedStore(t, redis.url, `${redis.prefix}bl:`)
  const tag = userTag('wxapp', 'blacklisted')
  const ref = { tag, sid: newSessionId() }
  const data = { sub: 'blacklisted', openid: 'o', sessionKey: 'k' }
  await store.createSession(ref, data, 'h0', 60)
  await store.blacklist(ref, 'jti-stolen', 1)
  await sleep(1_100)
  t.equal(await store.checkAccess(ref, 'jti-stolen'), 'revoked', 'past its TTL, still there: still refused')
  await store.createSession({ tag, sid: newSessionId() }, data, 'h0', 60, { exclusive: '', maxSessions: 10, accessTtlMs: 1000 })
  t.equal(await store.checkAccess(ref, 'jti-stolen'), 'revoked', 'a login that cannot reach the limit does not read the user')
  await store.kick(tag, ['nosuchsessn0'], 'none', 1000)
  t.equal(statusOf(await store.checkAccess(ref, 'jti-stolen')), 'ok', 'a pass over the user forgets it')
})

test('without a session limit (the store called directly), a user\'s hash stays bounded: past SCANLESS_FIELDS fields a login drops what expired', async (t) => {
  const redis = await startRedis(t)
  const prefix = `${redis.prefix}bounded:`
  const store = await ownedStore(t, redis.url, prefix)
  const inspect = redisClient(t, redis.url)
  const tag = userTag('wxapp', 'many')
  const data = { sub: 'many', openid: 'o', sessionKey: 'k' }
  await store.createSession({ tag, sid: newSessionId() }, data, 'h0', 60) // keeps the key alive
  for (let i = 0; i < 20; i++) await store.createSession({ tag, sid: newSessionId() }, data, 'h0', 1)
  t.equal(await inspect.hlen(keyNames(prefix).user(tag)), 21 * FIELDS_PER_SESSION)
  await sleep(1_100)
  await store.createSession({ tag, sid: newSessionId() }, data, 'h0', 60)
  t.ok(21 * FIELDS_PER_SESSION >= SCANLESS_FIELDS, 'the hash was past the bound')
  t.equal(await inspect.hlen(keyNames(prefix).user(tag)), 2 * FIELDS_PER_SESSION, 'the twenty expired sessions are gone')
})

test('a host-provided client is left open on close; an owned one is closed', async (t) => {
  const redis = await startRedis(t)
  const hostClient = redisClient(t, redis.url)
  await hostClient.ping()
  const hostStore = createRedisStore({ client: hostClient, keyPrefix: redis.prefix, timeoutMs: 1000, ownsClient: false })
  await hostStore.close()
  t.equal(await hostClient.ping(), 'PONG')

  const owned = await connectRedis({ url: redis.url, timeoutMs: 1000 })
  const ownedStore = createRedisStore({ client: owned, keyPrefix: redis.prefix, timeoutMs: 1000, ownsClient: true })
  await ownedStore.close()
  await t.rejects(owned.sendCommand(['PING']), 'the owned client is closed')
})

test('connectRedis refuses an unreachable server quickly, without leaking the URL', async (t) => {
  const port = await freePort()
  const started = Date.now()
  const err = await connectRedis({ url: `redis://:hunter2-password@127.0.0.1:${port}`, timeoutMs: 300 }).then(() => null, (e: Error) => e)
  t.match(err?.message, /^REDIS_URL: cannot connect to Redis/)
  t.notMatch(err?.message, /hunter2/)
  t.ok(Date.now() - started < 3000, 'fails within a few timeouts')
})

test('operations fail fast with STORE_UNAVAILABLE while Redis is down, and work again after', async (t) => {
  const redis = await startRedis(t, { own: true })
  const store = await ownedStore(t, redis.url, redis.prefix, 300)
  const ref = { tag: userTag('wxapp', 'zoe'), sid: newSessionId() }
  await store.createSession(ref, { sub: 'zoe', openid: 'o', sessionKey: 'k' }, 'h0', 60)
  await redis.stop()
  const started = Date.now()
  await t.rejects(store.checkAccess(ref, 'j'), StoreUnavailableError)
  await t.rejects(store.ping(), StoreUnavailableError)
  await t.rejects(store.claimCode('c', 1000), StoreUnavailableError)
  t.ok(Date.now() - started < 2000, 'no hang')
  await redis.start()
  let answer: Awaited<ReturnType<typeof store.checkAccess>> | undefined
  for (let i = 0; i < 100 && answer === undefined; i++) {
    answer = await store.checkAccess(ref, 'j').catch(() => undefined)
    if (answer === undefined) await sleep(50)
  }
  t.equal(answer, 'revoked', 'reconnected by itself (the restarted Redis is empty)')
})

test('a rotation reply is built from split parts: a stored value holding the separator cannot shift its fields', async (t) => {
  const redis = await startRedis(t)
  const prefix = `${redis.prefix}sep:`
  const store = await ownedStore(t, redis.url, prefix)
  const ref = { tag: userTag('wxapp', 'mallory'), sid: newSessionId() }
  await store.createSession(ref, { sub: 'user-7', openid: 'o-mallory', sessionKey: 'k', claims: { role: 'user' } }, 'h0', 60)
  // Only a write that bypassed the store could do this: the store never writes such values.
  await redisClient(t, redis.url).hset(keyNames(prefix).user(ref.tag), `${ref.sid}o`, 'o-mallory\u0001u\u0001role\u0001admin')
  const r = await store.rotateRefresh(ref, { generation: 0, presentedHash: 'h0', nextHash: 'h1', nonce: 'n1', graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })
  t.same(r.status === 'rotated' && r.session, { sub: 'user-7', openid: 'o-mallory', unionid: 'u', claims: { role: 'user' } })
})

test('stored values of a layout this version did not write are refused, never a script error', async (t) => {
  const { store, admin, tag, key } = await oneUser(t, 'odd')
  const ref = { tag, sid: newSessionId() }
  await store.createSession(ref, { sub: 'odd', openid: 'o-odd', sessionKey: 'k' }, 'h0', 60)
  const exp = Date.now() + 60_000
  const rot = (generation: number): RotateInput => ({ generation, presentedHash: `h${generation}`, nextHash: 'hn', nonce: 'n', graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })
  // A development build's hot field (expiry | digest | generation | delivered | rotated at), then a
  // predecessor whose rotation record is not this version's (previous digest | rotated at | nonce).
  await admin.hset(key, ref.sid, `${exp}\u0001h3\u00013\u0001\u0001${Date.now()}`)
  for (const g of [0, 2, 3, 5]) t.same(await store.rotateRefresh(ref, rot(g)), { status: 'invalid' }, `generation ${g}`)
  await admin.hset(key, ref.sid, `${exp}\u0001h3\u00013`, `${ref.sid}p`, `hprev\u0001${Date.now()}\u0001n`)
  t.same(await store.rotateRefresh(ref, rot(2)), { status: 'invalid' }, 'a predecessor with an unreadable rotation record')
  t.equal((await store.rotateRefresh(ref, rot(3))).status, 'rotated', 'the current token still rotates')
})

test('a kick of a user\'s last session leaves a key that expires with its marker (emptied, the hash was a new key without a TTL)', async (t) => {
  const { store, admin, tag, key } = await oneUser(t, 'kicked-last')
  const sid = newSessionId()
  await store.createSession({ tag, sid }, { sub: 'kicked-last', openid: 'o-k', sessionKey: 'k' }, 'h0', 60)
  t.equal(await store.kick(tag, 'all', 'fraud-check', 60_000), 1)
  t.same(await admin.hkeys(key), [`${sid}x`], 'only its marker is left')
  const pttl = await admin.pttl(key)
  t.ok(pttl > 0 && pttl <= 60_000, `the key expires with the marker (${pttl} ms)`)
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  const other = newSessionId()
  await store.createSession({ tag, sid: other }, { sub: 'kicked-last', openid: 'o-k', sessionKey: 'k' }, 'h1', 60)
  t.equal(await store.kick(tag, [other], 'fraud-check', 60_000), 1)
  t.equal(await admin.pttl(key), -1, 'with roles an operator set, the key is still kept for good')
})

test('a login that ends a session keeps the key as long as its marker, a refresh TTL shorter than an access token\'s included', async (t) => {
  const { store, admin, tag, key } = await oneUser(t, 'short-refresh')
  const data = { sub: 'short-refresh', openid: 'o-s', sessionKey: 'k' }
  const policy = { exclusive: '' as const, maxSessions: 1, accessTtlMs: 30_000 }
  await store.createSession({ tag, sid: newSessionId() }, data, 'h0', 2, policy)
  t.same(await store.createSession({ tag, sid: newSessionId() }, data, 'h1', 2, policy), { status: 'created', ended: 1 })
  const pttl = await admin.pttl(key)
  t.ok(pttl > 25_000, `the key lives as long as the marker (${pttl} ms)`)
})

test('a pass drops the expired markers at the head of the user\'s hash (the oldest), up to the first that still answers', async (t) => {
  const { store, admin, tag, key } = await oneUser(t, 'dead-markers')
  const data = { sub: 'dead-markers', openid: 'o-d', sessionKey: 'k', device: { deviceType: 'mp' } }
  const policy = { exclusive: 'same' as const, maxSessions: 10, accessTtlMs: 100 }
  // Each login ends the one before it: a session of 2 s leaves a marker that expires with it, one of
  // 60 s a marker that answers for a minute.
  const sids = Array.from({ length: 7 }, () => newSessionId())
  for (const [i, ttl] of [2, 2, 2, 60, 60, 2, 2].entries()) await store.createSession({ tag, sid: sids[i] as string }, data, 'h0', ttl, policy)
  const markers = async (): Promise<string[]> => (await admin.hkeys(key)).filter((f) => f.length === 13 && f.endsWith('x'))
  t.same(await markers(), sids.slice(0, 6).map((sid) => `${sid}x`), 'six markers, in the order they were written')
  await sleep(2_100)
  t.same(await store.createSession({ tag, sid: newSessionId() }, data, 'h1', 60, policy), { status: 'created', ended: 0 })
  t.same(await markers(), [sids[3], sids[4], sids[5]].map((sid) => `${sid}x`), 'the three expired at the head went; the two that answer and the expired one after them stay')
  t.equal(await admin.hexists(key, sids[6] as string), 0, 'the expired session went too')
})

test('a login that replaces operator roles with none sets the key\'s lifetime from all it holds, not from its own session', async (t) => {
  const { store, admin, tag, key } = await oneUser(t, 'roles-gone')
  const data = { sub: 'roles-gone', openid: 'o-r', sessionKey: 'k' }
  await store.setAccess(tag, { roles: ['admin'], permissions: [] })
  const a = newSessionId()
  await store.createSession({ tag, sid: a }, data, 'h0', 60)
  t.equal(await store.kick(tag, [a], 'fraud-check', 1_800_000), 1)
  t.equal(await admin.pttl(key), -1, 'kept for good by the roles')
  await store.createSession({ tag, sid: newSessionId() }, { ...data, access: { roles: [], permissions: [] } }, 'h1', 60)
  const pttl = await admin.pttl(key)
  t.ok(pttl > 1_700_000, `the key lives as long as the kicked session's marker (${pttl} ms), not the new session's 60 s`)
})

test('an expiry this version never writes (inf, nan, negative, past the year 30,000) is no live session: a pass or a rotation drops it, never a script error', async (t) => {
  const { store, admin, tag, key } = await oneUser(t, 'odd-expiry')
  const good = newSessionId()
  await store.createSession({ tag, sid: good }, { sub: 'odd-expiry', openid: 'o-odd', sessionKey: 'k' }, 'h0', 60)
  const odd = ['inf', 'nan', '-5', '9e99', '8e17', '9'.repeat(19)].map((expiry) => ({ expiry, sid: newSessionId() }))
  for (const { expiry, sid } of odd) await admin.hset(key, { [sid]: `${expiry}\u0001h`, [`${sid}o`]: 'o-odd', [`${sid}k`]: 'k' })
  t.equal(await store.kick(tag, 'all', 'fraud-check', 60_000), 1, 'only the session this version wrote was live')
  for (const { expiry, sid } of odd) t.equal(await admin.hexists(key, sid), 0, `${expiry}: dropped`)
  const rotating = newSessionId()
  for (const expiry of ['inf', 'nan', '8e17']) {
    await admin.hset(key, { [rotating]: `${expiry}\u0001h0`, [`${rotating}o`]: 'o-odd', [`${rotating}k`]: 'k' })
    t.same(await store.rotateRefresh({ tag, sid: rotating }, { generation: 0, presentedHash: 'h0', nextHash: 'h1', nonce: 'n', graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 }), { status: 'invalid' }, `a rotation of a session expiring at ${expiry} is refused`)
    t.equal(await admin.hexists(key, rotating), 0, `${expiry}: dropped by the rotation`)
  }
  const pttl = await admin.pttl(key)
  t.ok(pttl > 0, `the key keeps a lifetime (${pttl})`)
})

test('a login-code claim that answered after its deadline is released: the code is not burned', async (t) => {
  const redis = await startRedis(t, { own: true })
  const store = await ownedStore(t, redis.url, `${redis.prefix}late:`, 300)
  t.equal(await store.claimCode('c1', 60_000), 'claimed')
  redis.pause()
  t.teardown(() => { redis.resume() })
  await t.rejects(store.claimCode('c2', 60_000), { code: 'STORE_UNAVAILABLE' }, 'Redis frozen: the claim times out')
  redis.resume()
  // The SET NX was in flight: Redis applies it once it thaws, and the late answer releases it.
  let outcome = await store.claimCode('c2', 60_000)
  for (let i = 0; i < 100 && outcome !== 'claimed'; i++) {
    await sleep(20)
    outcome = await store.claimCode('c2', 60_000)
  }
  t.equal(outcome, 'claimed', 'the same code can be claimed again')
  t.equal(await store.claimCode('c1', 60_000), 'pending', 'a claim that answered in time stays')
})

test('a ban for good keeps the user\'s key; unbanned, the key lives as long as what it holds', async (t) => {
  const { store, admin, prefix, tag, key } = await oneUser(t, 'ttl')
  await store.createSession({ tag, sid: newSessionId() }, { sub: 'ttl', openid: 'o', sessionKey: 'k' }, 'h0', 60)
  await store.ban(tag, { until: null, reason: 'r' }, 30_000)
  t.equal(await admin.pttl(key), -1, 'for good: no expiry while it lasts')
  await store.ban(tag, { until: Date.now() + 5000, reason: 'r' }, 30_000)
  t.ok(await admin.pttl(key) > 55_000, 'a timed ban: at least as long as the ended session\'s marker (60 s)')
  await store.unban(tag)
  const ttl = await admin.pttl(key)
  t.ok(ttl > 0 && ttl <= 60_000, `unbanned: the marker's lifetime (${ttl} ms)`)
  await store.revokeUser(tag)
  t.equal(await admin.exists(key), 0, 'nothing left: the key is gone')
  const lone = userTag('wxapp', 'lone')
  await store.ban(lone, { until: Date.now() + 3000, reason: 'r' }, 30_000)
  const loneTtl = await admin.pttl(keyNames(prefix).user(lone))
  t.ok(loneTtl > 0 && loneTtl <= 3000, `a ban alone lives as long as the ban (${loneTtl} ms)`)
})

test('a check is one HMGET; the first use of a rotation\'s access token adds one script, once per rotation', async (t) => {
  const redis = await startRedis(t, { own: true }) // its command statistics are this test's alone
  const store = await ownedStore(t, redis.url, `${redis.prefix}rtt:`)
  const admin = redisClient(t, redis.url)
  const ref = { tag: userTag('wxapp', 'rtt'), sid: newSessionId() }
  const rot = (generation: number): RotateInput => ({ generation, presentedHash: `h${generation}`, nextHash: `h${generation + 1}`, nonce: 'n', graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })
  await store.createSession(ref, { sub: 'rtt', openid: 'o-rtt', sessionKey: 'k' }, 'h0', 60)
  await store.rotateRefresh(ref, rot(0))
  // Another session's mark first: Redis has the scripts' library from then on (else a call that finds
  // no function, then EVALSHA, NOSCRIPT and EVAL).
  const warm = { tag: ref.tag, sid: newSessionId() }
  await store.createSession(warm, { sub: 'rtt', openid: 'o-rtt', sessionKey: 'k' }, 'h0', 60)
  await store.rotateRefresh(warm, rot(0))
  await store.checkAccess(warm, 'j', 1)
  const calls = async (): Promise<Record<string, number>> => {
    const n = async (c: string): Promise<number> => (await commandStats(admin, c)).calls
    return { hmget: await n('hmget'), scripts: await n('fcall') + await n('evalsha') + await n('eval'), hset: await n('hset') }
  }
  await admin.config('RESETSTAT')
  for (let i = 0; i < 10; i++) t.equal(statusOf(await store.checkAccess(ref, `j${i}`, 1)), 'ok')
  for (let i = 0; i < 5; i++) await store.checkAccess(ref, 'j', undefined)
  t.same(await calls(), { hmget: 15, scripts: 1, hset: 1 }, '15 checks, one round trip each, and one mark')
  await store.rotateRefresh(ref, rot(1))
  await admin.config('RESETSTAT')
  for (let i = 0; i < 10; i++) await store.checkAccess(ref, 'j', 1)
  t.same(await calls(), { hmget: 10, scripts: 0, hset: 0 }, 'tokens of the generation before mark nothing')
  for (let i = 0; i < 10; i++) await store.checkAccess(ref, 'j', 2)
  t.same(await calls(), { hmget: 20, scripts: 1, hset: 1 }, 'one mark for the new rotation')
  t.equal(await admin.object('ENCODING', keyNames(`${redis.prefix}rtt:`).user(ref.tag)), 'listpack', 'the marked value keeps the hash compact')
})

test('hasOfflineQueue reads a node-redis cluster\'s node defaults (kept in _options)', async (t) => {
  const rootNodes = [{ url: 'redis://127.0.0.1:1' }]
  t.equal(hasOfflineQueue(createCluster({ rootNodes })), true, 'node-redis queues by default')
  t.equal(hasOfflineQueue(createCluster({ rootNodes, defaults: { disableOfflineQueue: true } })), false)
  t.equal(hasOfflineQueue(createClient({ disableOfflineQueue: true })), false)
})
