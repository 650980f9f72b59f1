// How the store's scripts reach Redis (lib/store/redis-script-runner.ts): as functions of one library,
// loaded by need, else by EVALSHA, then EVAL. On a redis-server of each test's own: the tests read
// its command statistics.
import { test, type Test } from 'tap'
import { connectRedis, sendCommandOf, type RedisClient } from '../../../lib/store/redis-client.js'
import { FUNCTIONS_RETRY_MS, LOAD_RETRY_MS, scriptRunner, scriptsNotices, toldOnce, type Send } from '../../../lib/store/redis-script-runner.js'
import { createRedisStore } from '../../../lib/store/redis.js'
import type { SessionStore } from '../../../lib/store/types.js'
import { newSessionId, userTag } from '../../../lib/ids.js'
import { commandStats, hasScriptsLibrary, redisClient, startRedis } from '../../helper.js'
import { until } from '../../redis-deployments.js'

/** A store on `client`, one user's session in it, and a rotation of that session's token at each call. */
async function rotating (t: Test, client: RedisClient, prefix: string): Promise<{ store: SessionStore, rotate: () => Promise<string> }> {
  const store = createRedisStore({ client, keyPrefix: prefix, timeoutMs: 1000, ownsClient: false })
  t.teardown(async () => await store.close())
  const ref = { tag: userTag('wxapp', prefix), sid: newSessionId() }
  t.equal((await store.createSession(ref, { sub: prefix, openid: 'o', sessionKey: 'k' }, 'h0', 60)).status, 'created')
  let generation = 0
  const rotate = async (): Promise<string> => {
    const r = await store.rotateRefresh(ref, { generation, presentedHash: `h${generation}`, nextHash: `h${generation + 1}`, nonce: `n${generation}`, graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })
    if (r.status === 'rotated') generation++
    return r.status
  }
  return { store, rotate }
}

test('scripts run as functions of one library, loaded by the first call, and again after Redis forgot it (FUNCTION FLUSH, a restart)', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  const nodeRedis = await connectRedis({ url: redis.url, timeoutMs: 1000 })
  t.teardown(() => { nodeRedis.destroy() })
  for (const [name, client] of [['node-redis', nodeRedis], ['ioredis', redisClient(t, redis.url)]] as const) {
    await admin.call('FUNCTION', 'FLUSH')
    await admin.script('FLUSH')
    await admin.config('RESETSTAT')
    const { rotate } = await rotating(t, client, `${name}:`)
    t.equal((await commandStats(admin, 'fcall')).failed, 1, `${name}: the first call met no function`)
    t.equal((await commandStats(admin, 'eval')).calls, 1, `${name}: and ran by EVAL (NOSCRIPT after EVALSHA)`)
    await until(async () => await hasScriptsLibrary(admin), 'the library, loaded by the first call', 5000, 20)
    for (let round = 0; round < 2; round++) {
      await admin.config('RESETSTAT')
      t.equal(await rotate(), 'rotated')
      t.equal(await rotate(), 'rotated')
      t.same([await commandStats(admin, 'fcall'), (await commandStats(admin, 'evalsha')).calls, (await commandStats(admin, 'eval')).calls],
        [{ calls: 2, rejected: 0, failed: 0 }, 0, 0], `${name}: then every call by FCALL (round ${round})`)
      await admin.call('FUNCTION', 'FLUSH')
      // Calls that find no function are answered all the same; one a second after the last load loads it again.
      await until(async () => { t.equal(await rotate(), 'rotated'); return await hasScriptsLibrary(admin) }, 'the library, loaded again', 5000, 50)
    }
  }
})

test('a Redis that refuses FCALL (an ACL, a Redis before 7.0) gets every script by EVALSHA, and EVAL after SCRIPT FLUSH; FCALL is not sent again', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  await admin.call('ACL', 'SETUSER', 'nofn', 'on', '>pw', '~*', '&*', '+@all', '-fcall', '-function')
  const url = redis.url.replace('redis://', 'redis://nofn:pw@')
  for (const [name, client] of [['node-redis', await connectRedis({ url, timeoutMs: 1000 })], ['ioredis', redisClient(t, url)]] as const) {
    if (name === 'node-redis') t.teardown(() => { (client as { destroy: () => void }).destroy() })
    await admin.config('RESETSTAT')
    const { rotate } = await rotating(t, client, `${name}:`)
    for (let i = 0; i < 3; i++) t.equal(await rotate(), 'rotated')
    t.equal((await commandStats(admin, 'fcall')).rejected, 1, `${name}: FCALL refused once, then not sent`)
    t.equal((await commandStats(admin, 'evalsha')).calls, 4, `${name}: the calls by EVALSHA`)
    await admin.script('FLUSH')
    t.equal(await rotate(), 'rotated', `${name}: NOSCRIPT is answered by EVAL`)
    await admin.config('RESETSTAT')
    t.equal(await rotate(), 'rotated')
    t.same([(await commandStats(admin, 'evalsha')).calls, (await commandStats(admin, 'eval')).calls, (await commandStats(admin, 'fcall')).rejected], [1, 0, 0], `${name}: then by digest again, without the script's text`)
  }
})

test('a Redis that runs FCALL but refuses FUNCTION LOAD: the first call by EVALSHA, and every later one', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  await admin.call('ACL', 'SETUSER', 'noload', 'on', '>pw', '~*', '&*', '+@all', '-function|load')
  const { rotate } = await rotating(t, redisClient(t, redis.url.replace('redis://', 'redis://noload:pw@')), 'noload:')
  await until(async () => (await commandStats(admin, 'function|load')).rejected === 1, 'the load, refused', 5000, 20)
  for (let i = 0; i < 3; i++) t.equal(await rotate(), 'rotated')
  t.same(await commandStats(admin, 'fcall'), { calls: 1, rejected: 0, failed: 1 }, 'FCALL was sent once, before the load was refused')
  t.equal((await commandStats(admin, 'function|load')).rejected, 1, 'the load not tried again')
  t.notOk(await hasScriptsLibrary(admin))
})

test('functions refused are tried again FUNCTIONS_RETRY_MS later: an ACL granted (as a Redis upgraded) takes effect without a restart, one still refused costs one FCALL', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  await admin.call('ACL', 'SETUSER', 'later', 'on', '>pw', '~*', '&*', '+@all', '-fcall', '-function')
  const send = sendCommandOf(redisClient(t, redis.url.replace('redis://', 'redis://later:pw@')))
  let clock = 0
  const told: string[] = []
  const run = scriptRunner(send, { load: send, now: () => clock, onFallback: (why) => { told.push(why) }, onRestored: () => { told.push('restored') } })
  const key = `${redis.prefix}counter`
  let count = 0
  const hit = async (): Promise<void> => { t.equal((await run('wxauthHit', [key], 60_000) as number[])[0], ++count, `call ${count} answered once`) }
  await admin.config('RESETSTAT')
  for (let i = 0; i < 3; i++) await hit()
  clock += FUNCTIONS_RETRY_MS - 1
  await hit()
  t.equal((await commandStats(admin, 'fcall')).rejected, 1, 'refused once, not tried again before FUNCTIONS_RETRY_MS')
  clock += 1
  await hit()
  await hit()
  t.equal((await commandStats(admin, 'fcall')).rejected, 2, 'then one FCALL, refused again, and off for as long once more')
  t.equal(told.length, 2, 'each refusal told')
  t.notOk(told.includes('restored'), 'a retry refused is not a return')

  await admin.call('ACL', 'SETUSER', 'later', '+fcall', '+function')
  await hit()
  t.equal((await commandStats(admin, 'fcall')).calls, 0, 'an ACL granted is seen at the next try, not before')
  clock += FUNCTIONS_RETRY_MS
  await hit()
  await until(async () => await hasScriptsLibrary(admin), 'the library, loaded by the try that found no function', 5000, 20)
  await admin.config('RESETSTAT')
  await hit()
  t.same([await commandStats(admin, 'fcall'), (await commandStats(admin, 'evalsha')).calls], [{ calls: 1, rejected: 0, failed: 0 }, 0], 'then by FCALL, without a restart')
  t.same(told.slice(2), ['restored'], 'the return told once, at the first FCALL that answered')
})

test('toldOnce: the runners of one store (its connection\'s, the durable lane\'s) tell each change once, and a return only after a fall back', async (t) => {
  const told: string[] = []
  const { onFallback, onRestored } = toldOnce({ onScriptsFallback: (why) => { told.push(`off: ${why}`) }, onScriptsRestored: () => { told.push('on') } })
  onRestored() // a runner whose first retry answered, though the store told no fall back
  onFallback('a')
  onFallback('b') // the lane's runner, refused too
  onRestored()
  onRestored()
  onFallback('c')
  t.same(told, ['off: a', 'on', 'off: c'])
  const quiet = toldOnce({})
  quiet.onFallback('a')
  quiet.onRestored()
  t.pass('a store told nothing needs no listener')
})

test('scriptsNotices: one line for the fall back (why, and when functions are tried again), one for the return', async (t) => {
  const lines: string[] = []
  const { onScriptsFallback, onScriptsRestored } = scriptsNotices((msg) => { lines.push(msg) })
  onScriptsFallback('Redis refused FCALL (a Redis before 7.0, or an ACL without fcall)')
  onScriptsRestored()
  t.same(lines, [
    'Redis refused FCALL (a Redis before 7.0, or an ACL without fcall): the store\'s scripts go by EVALSHA, which costs Redis more per call than its functions, tried again every 10 minutes (docs/operations.md#redis)',
    'Redis runs the store\'s functions again: its scripts go by FCALL'
  ])
})

test('one load at a time, a second apart at least: one that failed in passing (a connection lost) is tried again at the first miss after that', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  const send = sendCommandOf(redisClient(t, redis.url))
  let clock = 0
  const loads: string[] = []
  const load: Send = async (key, command) => {
    loads.push(command.slice(0, 2).join(' '))
    if (loads.length === 1) throw new Error('Connection is closed.')
    return await send(key, command)
  }
  const run = scriptRunner(send, { load, now: () => clock })
  const key = `${redis.prefix}counter`
  t.same(await run('wxauthHit', [key], 60_000), [1, 60_000])
  await until(async () => loads.length === 1, 'the first load', 5000, 10)
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(await hasScriptsLibrary(admin))
  clock += LOAD_RETRY_MS - 1
  t.same((await run('wxauthHit', [key], 60_000) as number[])[0], 2, 'answered by EVALSHA meanwhile')
  t.equal(loads.length, 1, 'not loaded again within a second')
  clock += 1
  const many = await Promise.all(Array.from({ length: 20 }, async () => await run('wxauthHit', [key], 60_000) as number[]))
  t.same(many.map((r) => r[0] as number).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 3), 'twenty calls at once, each answered once')
  await until(async () => await hasScriptsLibrary(admin), 'the library, loaded by one of them', 5000, 20)
  t.same(loads, ['FUNCTION LOAD', 'FUNCTION LOAD'], 'one load for the twenty')
  await admin.config('RESETSTAT')
  t.same((await run('wxauthHit', [key], 60_000) as number[])[0], 23)
  t.equal((await commandStats(admin, 'fcall')).calls, 1, 'then by FCALL')
})

test('a Redis without FCALL (before 7.0: an unknown command) gets every script by EVALSHA, FCALL not sent again', async (t) => {
  const redis = await startRedis(t, { own: true })
  const real = sendCommandOf(redisClient(t, redis.url))
  const sent: string[] = []
  const send: Send = async (key, command) => {
    sent.push(command[0] as string)
    if (command[0] === 'FCALL') throw new Error(`ERR unknown command 'FCALL', with args beginning with: '${command[1] ?? ''}' '1' `)
    return await real(key, command)
  }
  const told: string[] = []
  const run = scriptRunner(send, { load: send, onFallback: (why) => { told.push(why) } })
  for (let i = 1; i <= 3; i++) t.same((await run('wxauthHit', [`${redis.prefix}c`], 1000) as number[])[0], i)
  t.same(sent, ['FCALL', 'EVALSHA', 'EVAL', 'EVALSHA', 'EVALSHA'])
  t.same(told, ['Redis refused FCALL (a Redis before 7.0, or an ACL without fcall)'], 'told once, without Redis\' message (it repeats the arguments)')
})

test('a Redis that takes no writes now (out of memory) refuses a function before it runs: the call goes by EVALSHA, and a logout or a refused refresh still answers', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  const { store, rotate } = await rotating(t, redisClient(t, redis.url), 'oom:')
  await until(async () => await hasScriptsLibrary(admin), 'the library', 5000, 20)
  t.equal(await rotate(), 'rotated')
  await admin.config('SET', 'maxmemory', '1')
  t.teardown(async () => { await admin.config('SET', 'maxmemory', '0') })
  await admin.config('RESETSTAT')
  const stranger = { tag: userTag('wxapp', 'stranger'), sid: newSessionId() }
  t.equal((await store.rotateRefresh(stranger, { generation: 0, presentedHash: 'x', nextHash: 'y', nonce: 'n', graceMs: 0, ttlSec: 60, maxAgeSec: 60 })).status, 'invalid', 'a refresh of no session: refused as before')
  await store.revokeSession(stranger)
  t.same([(await commandStats(admin, 'fcall')).rejected, (await commandStats(admin, 'evalsha')).calls], [2, 2], 'each refused by FCALL, answered by EVALSHA')
  await admin.config('SET', 'maxmemory', '0')
  await admin.config('RESETSTAT')
  t.equal(await rotate(), 'rotated')
  t.equal((await commandStats(admin, 'fcall')).calls, 1, 'functions again once Redis takes writes')
})

test('a runner without a way to load the library sends scripts by EVALSHA only', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  const client = redisClient(t, redis.url)
  const run = scriptRunner(sendCommandOf(client))
  await run('wxauthHit', [`${redis.prefix}c`], 1000)
  await run('wxauthHit', [`${redis.prefix}c`], 1000)
  t.same([(await commandStats(admin, 'fcall')).failed, (await commandStats(admin, 'evalsha')).calls], [0, 2])
})
