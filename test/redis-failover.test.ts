// The standalone server (dist/server.js) on real Redis deployments with replicas, under a steady,
// bounded load of authenticated requests and refreshes from users who each hold one session, while
// a cluster master or the Sentinel-managed master is killed with SIGKILL, or a replica is promoted
// gracefully. Every answer is 200 or a coded 503; every request succeeds again within 10 s of the
// promotion; no session ends. (Acknowledged rotations a dead master had not yet passed to its replica
// would end sessions: with replicas in sync on one machine none were lost in these runs; each run
// reports the count.)
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { test, type Test } from 'tap'
import { freePort, startSim } from './helper.js'
import { sentinelMaster, startClusterWithReplicas, startSentinelWithReplica, until } from './redis-deployments.js'

const entry = fileURLToPath(new URL('../dist/server.js', import.meta.url))
const skip = existsSync(entry) ? false : 'run `npm run build` first (npm test does)'
const USERS = 12
const RECOVERY_MS = 10_000

interface Answer { at: number, what: 'me' | 'refresh', status: number, code?: string }

/** The standalone server on `redis` (the env of a topology), listening; stopped at teardown. */
async function startGateway (t: Test, sim: { appid: string, secret: string, url: string }, redis: Record<string, string>): Promise<string> {
  const port = await freePort()
  const child = spawn(process.execPath, [entry], {
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      STORE_TIMEOUT_MS: '500',
      JWT_SECRET: 'failover-test-secret-0123456789-abcdefghij',
      WECHAT_APPID: sim.appid,
      WECHAT_SECRET: sim.secret,
      WECHAT_API_BASE: sim.url,
      RATE_LIMIT_LOGIN_MAX: '1000000',
      RATE_LIMIT_REFRESH_MAX: '1000000',
      ...redis
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  t.teardown(() => { child.kill('SIGKILL') })
  const base = `http://127.0.0.1:${port}`
  await until(async () => (await request(`${base}/health`)).statusCode === 200, `the gateway to be ready:\n${out}`, 20_000)
  return base
}

async function call (base: string, method: 'GET' | 'POST', path: string, opts: { token?: string, body?: unknown }): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await request(`${base}${path}`, {
    method,
    headers: { ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {})
  })
  const text = await res.body.text()
  return { status: res.statusCode, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }
}

/**
 * USERS users, each logged in once, asking GET /auth/me and refreshing every third request, 20 ms
 * apart; a 503 keeps the tokens it had. Runs until `stop` resolves; returns every answer and each
 * user's last tokens.
 */
async function load (base: string, stop: Promise<void>): Promise<{ answers: Answer[], users: Array<{ accessToken: string, refreshToken: string }> }> {
  const state = { running: true }
  stop.then(() => { state.running = false }, () => {})
  const answers: Answer[] = []
  const users = await Promise.all(Array.from({ length: USERS }, async (_, i) => {
    const login = await call(base, 'POST', '/auth/login', { body: { code: `failover${i}.${Date.now()}` } })
    if (login.status !== 200) throw new Error(`login ${login.status} ${JSON.stringify(login.body)}`)
    return { accessToken: String(login.body.accessToken), refreshToken: String(login.body.refreshToken) }
  }))
  await Promise.all(users.map(async (user) => {
    for (let n = 0; state.running; n++) {
      const what = n % 3 === 2 ? 'refresh' : 'me'
      const res = what === 'me'
        ? await call(base, 'GET', '/auth/me', { token: user.accessToken })
        : await call(base, 'POST', '/auth/refresh', { body: { refreshToken: user.refreshToken } })
      answers.push({ at: Date.now(), what, status: res.status, ...(typeof res.body.code === 'string' ? { code: res.body.code } : {}) })
      if (what === 'refresh' && res.status === 200) Object.assign(user, { accessToken: res.body.accessToken, refreshToken: res.body.refreshToken })
      await sleep(20)
    }
  }))
  return { answers, users }
}

/**
 * What a failover did to the load: the answers' kinds, the last failure after the promotion, sessions
 * that ended. A session ends when its last acknowledged rotation was lost (the dead master had not
 * passed it on): its token is then refused. Returns how many; asserts none unless `mayLose`.
 */
async function check (t: Test, base: string, run: Awaited<ReturnType<typeof load>>, failedAt: number, promotedAt: number, mayLose = false): Promise<number> {
  const kinds = [...new Set(run.answers.map((a) => `${a.status} ${a.code ?? ''}`.trim()))].sort()
  const failures = run.answers.filter((a) => a.status !== 200)
  const lastFailure = failures.at(-1)?.at ?? 0
  t.comment(`${run.answers.length} answers (${kinds.join(', ')}), ${failures.length} failed; promoted ${promotedAt - failedAt} ms after the failure, last failed answer ${lastFailure === 0 ? 'none' : `${lastFailure - failedAt} ms after it`}`)
  // A lost rotation logs its user out (401 from then on): the measure of a lossy run is that count.
  if (!mayLose) {
    t.ok(kinds.every((k) => k === '200' || k === '503 STORE_UNAVAILABLE'), 'only 200 and coded 503')
    t.ok(lastFailure - promotedAt <= RECOVERY_MS, 'every request succeeds again within 10 s of the promotion')
    t.ok(run.answers.filter((a) => a.at > promotedAt + RECOVERY_MS).length > USERS * 10, 'and the load went on after that')
  }
  // A 503 says the store is slow now (a promoted master without its replica makes WAITs last their
  // timeout), not that the session ended: asked again until it answers, for up to 10 s.
  const finalRefresh = async (u: { refreshToken: string }): Promise<{ status: number, body: Record<string, unknown> }> => {
    for (let i = 0; ; i++) {
      const res = await call(base, 'POST', '/auth/refresh', { body: { refreshToken: u.refreshToken } })
      if (res.status !== 503 || i >= 50) return res
      await sleep(200)
    }
  }
  const ends = await Promise.all(run.users.map(finalRefresh))
  const lost = ends.filter((r) => r.status !== 200)
  t.comment(`sessions ended: ${lost.length} of ${USERS} (${lost.map((r) => r.body.code).join(', ')})`)
  if (!mayLose) t.equal(lost.length, 0, 'no session ended: each user refreshes with the last token it was given')
  return lost.length
}

/**
 * The load of `load()` on `base` while `fail()` happens 1.5 s in; runs until RECOVERY_MS + 2 s after
 * `promoted()` says the deployment has its new master (within `promotionTimeoutMs`). The answers,
 * and when each of the two was.
 */
async function failUnderLoad (base: string, fail: () => Promise<unknown>, promoted: () => Promise<boolean>, what: string, promotionTimeoutMs: number): Promise<{ run: Awaited<ReturnType<typeof load>>, failedAt: number, promotedAt: number }> {
  let release = (): void => {}
  const running = load(base, new Promise<void>((resolve) => { release = resolve }))
  await sleep(1500)
  await fail()
  const failedAt = Date.now()
  await until(promoted, what, promotionTimeoutMs)
  const promotedAt = Date.now()
  await sleep(RECOVERY_MS + 2000)
  release()
  return { run: await running, failedAt, promotedAt }
}

const sentinelEnv = (sentinel: { sentinels: number[], name: string }): Record<string, string> =>
  ({ REDIS_SENTINELS: sentinel.sentinels.map((p) => `redis://127.0.0.1:${p}`).join(','), REDIS_SENTINEL_NAME: sentinel.name })

test('Redis Cluster: a master killed with SIGKILL, then a replica promoted gracefully', { skip }, async (t) => {
  const sim = await startSim(t)
  const cluster = await startClusterWithReplicas(t)
  const base = await startGateway(t, sim, { REDIS_CLUSTER_NODES: cluster.masters.map((p) => `redis://127.0.0.1:${p}`).join(',') })

  const isMaster = async (port: number): Promise<boolean> => String((await cluster.admin(port).call('ROLE') as unknown[])[0]) === 'master'
  const [victim, heir] = [cluster.masters[0] as number, cluster.replicas[0] as number]
  const killed = await failUnderLoad(base, async () => { await cluster.kill(victim) }, async () => await isMaster(heir), 'the replica to be promoted', 20_000)
  await check(t, base, killed.run, killed.failedAt, killed.promotedAt)

  // Graceful: the replica of another master takes over (CLUSTER FAILOVER), nothing is lost.
  const taker = cluster.replicas[1] as number
  const graceful = await failUnderLoad(base, async () => await cluster.admin(taker).call('CLUSTER', 'FAILOVER'), async () => await isMaster(taker), 'the graceful failover', 20_000)
  await check(t, base, graceful.run, graceful.failedAt, graceful.promotedAt)
})

test('Sentinel: the master killed with SIGKILL', { skip }, async (t) => {
  const sim = await startSim(t)
  const sentinel = await startSentinelWithReplica(t)
  const base = await startGateway(t, sim, sentinelEnv(sentinel))
  const { run, failedAt, promotedAt } = await failUnderLoad(base, async () => { await sentinel.kill(sentinel.master) },
    async () => await sentinelMaster(sentinel) === sentinel.replica, 'the sentinels to promote the replica', 30_000)
  await check(t, base, run, failedAt, promotedAt)
})

// A replica 50 ms behind its master (a proxy delays each direction): the rotations the master
// acknowledged in its last 50 ms die with it, each a user logged out, unless the gateway waits for
// the replica (REDIS_WAIT_REPLICAS=1) before answering. With the option on, the promoted master has
// no replica left: every WAIT lasts its timeout, and on the Sentinel client's one master connection
// the requests behind it wait too (some past STORE_TIMEOUT_MS: 503), so recovery within 10 s is not
// asserted here; only 200 and coded 503 are.
test('Sentinel with a replica 50 ms behind, the master killed: acknowledged rotations lost without REDIS_WAIT_REPLICAS, none with it', { skip }, async (t) => {
  const sim = await startSim(t)
  const lost: Record<string, number> = {}
  for (const [name, wait] of [['off', {}], ['on', { REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '400', STORE_TIMEOUT_MS: '1000' }]] as const) {
    const sentinel = await startSentinelWithReplica(t, { replicaLagMs: 50 })
    const base = await startGateway(t, sim, { ...sentinelEnv(sentinel), ...wait })
    const { run, failedAt, promotedAt } = await failUnderLoad(base, async () => { await sentinel.kill(sentinel.master) },
      async () => await sentinelMaster(sentinel) === sentinel.replica, 'the sentinels to promote the replica', 30_000)
    t.comment(`REDIS_WAIT_REPLICAS ${name}: ${run.answers.filter((a) => a.what === 'refresh' && a.status === 200).length} rotations answered 200`)
    lost[name] = await check(t, base, run, failedAt, promotedAt, true)
    if (name === 'on') t.ok(run.answers.every((a) => a.status === 200 || a.code === 'STORE_UNAVAILABLE'), 'with the option on, only 200 and coded 503')
  }
  t.comment(`acknowledged rotations lost: off ${lost.off}, on ${lost.on}`)
  t.equal(lost.on, 0, 'with the option on, every rotation answered 200 survives the failover')
})
