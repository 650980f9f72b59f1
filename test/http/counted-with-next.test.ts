// Rate limits counted with the flow's next store command (http/counted-with-next.ts): a refresh
// waits for Redis once, a login twice; the budgets, answers and headers are those of
// @fastify/rate-limit; a login over its budget leaves its code usable and WeChat uncalled; a refresh
// over it withholds a rotation that the client's next try gets.
import { createClient } from '@redis/client'
import { test } from 'tap'
import { wordedAfter } from '../../http/counted-with-next.js'
import { alongGate } from '../../lib/rate-gate.js'
import { StoreUnavailableError } from '../../lib/errors.js'
import type { NodeRedisClientLike } from '../../lib/store/redis-client.js'
import { buildApp, json, me, startRedis, startSim, type Pair } from '../helper.js'

/** A node-redis client that counts round trips: a command sent while none of its others waits starts one. */
async function countingClient (url: string): Promise<{ client: NodeRedisClientLike, roundTrips: () => number, commands: string[] }> {
  const client = createClient({ url, disableOfflineQueue: true })
  await client.connect()
  let inFlight = 0
  let trips = 0
  const commands: string[] = []
  const counted: NodeRedisClientLike = {
    sendCommand: async (args, options) => {
      if (inFlight === 0) trips++
      inFlight++
      commands.push(String(args[0]))
      try { return await client.sendCommand(args, options) } finally { inFlight-- }
    },
    destroy: () => { client.destroy() },
    get isOpen () { return client.isOpen }
  }
  return { client: counted, roundTrips: () => trips, commands }
}

test('a refresh waits for Redis once and a login twice, their rate limits counted in the same round trips', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const counting = await countingClient(redis.url)
  t.teardown(() => { counting.client.destroy() })
  const app = await buildApp(t, { sim, redis: counting.client, config: { REDIS_KEY_PREFIX: redis.prefix } })
  const post = async (url: string, payload: object): Promise<ReturnType<typeof app.inject>> => await app.inject({ method: 'POST', url, payload })
  // Scripts are loaded by their first use (NOSCRIPT, then EVAL): once before counting.
  const warm = json<Pair>(await post('/auth/login', { code: 'ana.warm' }))
  await post('/auth/refresh', { refreshToken: warm.refreshToken })

  const before = counting.roundTrips()
  const login = await post('/auth/login', { code: 'ana.1' })
  t.equal(login.statusCode, 200)
  t.equal(counting.roundTrips() - before, 2, `login: the count with the code's claim, then the session (${counting.commands.slice(-6).join(' ')})`)
  t.equal(login.headers['x-ratelimit-limit'], '100000', 'the budget\'s headers, as @fastify/rate-limit set them')
  t.equal(login.headers['x-ratelimit-remaining'], String(100_000 - 2), 'two logins from this IP so far')

  const start = counting.roundTrips()
  const rotated = await post('/auth/refresh', { refreshToken: json<Pair>(login).refreshToken })
  t.equal(rotated.statusCode, 200)
  t.equal(counting.roundTrips() - start, 1, 'refresh: the count and the rotation together')
  t.ok(Number(rotated.headers['x-ratelimit-reset']) > 0)
})

test('a login over its budget: 429 RATE_LIMITED, WeChat not called, the code still usable', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { RATE_LIMIT_LOGIN_MAX: 1 } })
  const loginFrom = async (code: string, ip: string): Promise<ReturnType<typeof app.inject>> => await app.inject({ method: 'POST', url: '/auth/login', payload: { code }, remoteAddress: ip })
  t.equal((await loginFrom('bo.1', '10.9.0.1')).statusCode, 200)
  const calls = sim.calls.length
  const limited = await loginFrom('bo.2', '10.9.0.1')
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), { code: 'RATE_LIMITED', message: /^Too many requests; retry in (\d+ seconds|1 minute)$/ })
  t.ok(Number(limited.headers['retry-after']) > 0 && limited.headers['x-ratelimit-remaining'] === '0')
  t.equal(sim.calls.length, calls, 'WeChat was not called')
  t.equal((await loginFrom('bo.2', '10.9.0.2')).statusCode, 200, 'its claim was released: the same code logs in from within a budget')
  // Over the budget, a bad request says 429 too: nothing else is learned past the budget.
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'bo.3', deviceType: 'toaster' }, remoteAddress: '10.9.0.1' })).statusCode, 429)
})

test('a refresh over its budget: 429, the rotation withheld; the same token then gets the successor and the session lives', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { RATE_LIMIT_REFRESH_MAX: 1, REFRESH_GRACE_SECONDS: 0 } })
  const refreshFrom = async (refreshToken: string, ip: string): Promise<ReturnType<typeof app.inject>> => await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken }, remoteAddress: ip })
  const first = json<Pair>(await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'cy.1' } }))
  const second = await refreshFrom(first.refreshToken, '10.8.0.1')
  t.equal(second.statusCode, 200)
  const limited = await refreshFrom(json<Pair>(second).refreshToken, '10.8.0.1')
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'RATE_LIMITED')
  // No grace window: only "never delivered" lets the same token through again.
  const again = await refreshFrom(json<Pair>(second).refreshToken, '10.8.0.2')
  t.equal(again.statusCode, 200, 'the withheld rotation is handed over, not taken for reuse')
  t.equal((await me(app, json<Pair>(again).accessToken)).statusCode, 200, 'the session lives')
  t.equal((await refreshFrom(json<Pair>(again).refreshToken, '10.8.0.3')).statusCode, 200, 'and rotates on')
})

test('the gate: a refusal wins and undoes what was done; the store\'s failure is the flow\'s', async (t) => {
  const undone: string[] = []
  const refused = Promise.reject(new Error('limited'))
  await t.rejects(alongGate(refused, Promise.resolve('claimed'), (done) => undone.push(done)), { message: 'limited' })
  t.same(undone, ['claimed'])
  await t.rejects(alongGate(Promise.resolve(), Promise.reject(new StoreUnavailableError())), { code: 'STORE_UNAVAILABLE' })
  t.equal(await alongGate(undefined, Promise.resolve(7)), 7, 'no gate: a host\'s @fastify/rate-limit counted it')
  t.same([1, 2, 59, 60, 120].map(wordedAfter), ['1 second', '2 seconds', '59 seconds', '1 minute', '2 minutes'])
})
