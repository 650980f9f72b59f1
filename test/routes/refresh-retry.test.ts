// A retry is not a theft (issue 16): the predecessor of a rotation whose answer may never have reached
// its client is answered again, the same successor, even after the grace window; once the client shows
// it has the answer (it used the new access token, or the new refresh token), the predecessor is reuse.
// Through HTTP, on a real Redis and the simulator. The grace window is Redis's clock: it is set to 0,
// and each test waits until Redis's clock has left the rotation's millisecond.
import type { FastifyInstance } from 'fastify'
import { test } from 'tap'
import { buildApp, login, me, redisClient, refresh, startRedis, startSim, type Pair } from '../helper.js'

test('a refresh token presented again after the grace window', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, config: { REFRESH_GRACE_SECONDS: 0 } })
  const admin = redisClient(t, redis.url)
  const redisMs = async (): Promise<number> => {
    const [s, us] = await admin.time()
    return Number(s) * 1000 + Math.floor(Number(us) / 1000)
  }
  /** Waits until the grace window of 0 ms is over: Redis's clock has left the current millisecond. */
  const afterWindow = async (): Promise<void> => {
    const now = await redisMs()
    for (let i = 0; i < 1000 && await redisMs() <= now; i++);
  }
  const coded = (res: Awaited<ReturnType<typeof refresh>>): [number, string | undefined] => [res.statusCode, res.json().code]
  const rotate = async (gateway: FastifyInstance, token: string): Promise<Pair> => {
    const res = await refresh(gateway, token)
    if (res.statusCode !== 200) throw new Error(`refresh ${res.statusCode} ${res.body}`)
    return res.json<Pair>()
  }

  t.test('while the successor was never used: the same successor again, the session alive (the answer was lost)', async (t) => {
    const first = await login(app, 'rita.1')
    const lost = await rotate(app, first.refreshToken)
    await afterWindow()
    const retry = await refresh(app, first.refreshToken)
    t.equal(retry.statusCode, 200, 'not reuse: nothing shows the client ever had the answer')
    t.equal(retry.json<Pair>().refreshToken, lost.refreshToken, 'the same successor, no sibling')
    t.not(retry.json<Pair>().accessToken, lost.accessToken, 'with an access token of its own')
    await afterWindow()
    t.equal((await refresh(app, first.refreshToken)).json<Pair>().refreshToken, lost.refreshToken, 'as often as it comes')
    t.equal((await me(app, first.accessToken)).statusCode, 200, 'the session lives')
    t.equal((await rotate(app, lost.refreshToken)).refreshToken.split('.')[2], '2', 'and the successor rotates')
  })

  t.test('once an access token of the successor was used: reuse, the session revoked', async (t) => {
    const first = await login(app, 'rita.2')
    const other = await login(app, 'rita.3')
    const second = await rotate(app, first.refreshToken)
    t.equal((await me(app, second.accessToken)).statusCode, 200, 'the client used its new access token: the answer was delivered')
    await afterWindow()
    t.same(coded(await refresh(app, first.refreshToken)), [401, 'AUTH_REFRESH_REUSED'])
    t.same(coded(await me(app, second.accessToken)), [401, 'AUTH_TOKEN_REVOKED'], 'every token of the session stops working')
    t.same(coded(await refresh(app, second.refreshToken)), [401, 'AUTH_REFRESH_INVALID'])
    t.equal((await me(app, other.accessToken)).statusCode, 200, 'the user\'s other session lives on')
  })

  t.test('an access token handed out by a grace retry delivers the rotation as well', async (t) => {
    const first = await login(app, 'rita.4')
    await rotate(app, first.refreshToken)
    await afterWindow()
    const retried = await rotate(app, first.refreshToken)
    t.equal((await me(app, retried.accessToken)).statusCode, 200)
    await afterWindow()
    t.same(coded(await refresh(app, first.refreshToken)), [401, 'AUTH_REFRESH_REUSED'])
  })

  t.test('a token of the generation before delivers nothing; a second instance sees the mark', async (t) => {
    const other = await buildApp(t, { sim, redisServer: redis, config: { REFRESH_GRACE_SECONDS: 0 } })
    const first = await login(app, 'rita.5')
    await rotate(app, first.refreshToken)
    t.equal((await me(app, first.accessToken)).statusCode, 200, 'the login\'s access token, still valid')
    await afterWindow()
    t.equal((await refresh(other, first.refreshToken)).statusCode, 200, 'not delivered: a retry')
    const second = await rotate(other, first.refreshToken)
    t.equal((await me(other, second.accessToken)).statusCode, 200)
    await afterWindow()
    t.same(coded(await refresh(app, first.refreshToken)), [401, 'AUTH_REFRESH_REUSED'], 'delivered on one instance, reuse on the other')
  })

  t.test('once the successor refresh token was used: the token two generations back is reuse, as always', async (t) => {
    const first = await login(app, 'rita.6')
    const second = await rotate(app, first.refreshToken)
    const third = await rotate(app, second.refreshToken)
    t.same(coded(await refresh(app, first.refreshToken)), [401, 'AUTH_REFRESH_REUSED'])
    t.same(coded(await refresh(app, third.refreshToken)), [401, 'AUTH_REFRESH_INVALID'], 'the session is revoked')
  })

  t.test('the predecessor of a delivered rotation, by a thief after the client refreshed again: reuse', async (t) => {
    const first = await login(app, 'rita.7')
    const second = await rotate(app, first.refreshToken)
    // The thief replays the predecessor before the client used anything: it gets the client's successor.
    await afterWindow()
    const stolen = await rotate(app, first.refreshToken)
    t.equal(stolen.refreshToken, second.refreshToken, 'undetectable yet: the same successor as the client')
    // One of them uses it: the other's later rotation of the same token is the predecessor of a delivered rotation.
    const clientNext = await rotate(app, second.refreshToken)
    t.equal((await me(app, clientNext.accessToken)).statusCode, 200)
    await afterWindow()
    t.same(coded(await refresh(app, stolen.refreshToken)), [401, 'AUTH_REFRESH_REUSED'], 'the thief\'s copy, one rotation later, is reuse')
    t.same(coded(await me(app, clientNext.accessToken)), [401, 'AUTH_TOKEN_REVOKED'])
  })
})
