// The primary of WORKERS > 1 (workers.ts) as an operator meets it, over real sockets: its process group
// signalled as a whole (Ctrl-C, systemd's stop) drains once, every request answered; every worker
// killed at once, the primary stays and starts others; a gateway whose workers cannot start exits 1,
// as one process does; a worker that cannot drain makes the primary's exit 1.
import { createServer, type AddressInfo } from 'node:net'
import { availableParallelism } from 'node:os'
import { test } from 'tap'
import { request } from 'undici'
import { freePort, startRedis, startSim } from './helper.js'
import { count, run, unbuilt } from './standalone.js'
import { cgroupCores, workerCount } from '../workers.js'

type Tap = Parameters<typeof startSim>[0]

async function envFor (t: Tap, slowMs = 1500): Promise<Record<string, string>> {
  const redis = await startRedis(t)
  const sim = await startSim(t, { slowMs })
  return { PORT: String(await freePort()), LOG_LEVEL: 'info', WORKERS: '2', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, JWT_SECRET: 'workers-test-secret-0123456789-abcdefghij', WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, WECHAT_TIMEOUT_MS: '20000' }
}

const login = async (port: string, code: string): Promise<number | string> =>
  await request(`http://127.0.0.1:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ code }), reset: true })
    .then(async (res) => { await res.body.dump(); return res.statusCode }, (err: Error) => err.message)

test('WORKERS=auto: the cores a container\'s CPU limit grants (cgroup v2 or v1), never more than the machine has', async (t) => {
  const files = (f: Record<string, string>) => (path: string): string | undefined => f[path]
  const v1 = (quota: string): Record<string, string> => ({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': `${quota}\n`, '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' })
  t.equal(cgroupCores(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), undefined, 'v2 without a limit')
  t.equal(cgroupCores(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' })), 2, 'v2: 1.5 cores, rounded up')
  t.equal(cgroupCores(files({ '/sys/fs/cgroup/cpu.max': '50000 100000' })), 1, 'v2: half a core is one worker')
  t.equal(cgroupCores(files(v1('200000'))), 2, 'v1: two cores')
  t.equal(cgroupCores(files(v1('-1'))), undefined, 'v1 without a limit')
  t.equal(cgroupCores(files({})), undefined, 'no cgroup')
  t.equal(workerCount('auto', 1), 1, 'a one-core container on a bigger host: one worker')
  t.equal(workerCount('auto', 1000), availableParallelism(), 'a limit above the machine: its cores')
  t.equal(workerCount('3', 1), 3, 'a number is taken as given')
})

test('the process group signalled as a whole: each worker drains once, every request in flight answered, exit 0', { skip: unbuilt() }, async (t) => {
  const env = await envFor(t)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const p = run(env, undefined, { detached: true })
    t.teardown(() => { try { process.kill(-p.pid, 'SIGKILL') } catch {} })
    await p.until((out) => count(out, 'Server listening') === 2, 'two workers listening', 20_000)
    const inFlight = Array.from({ length: 4 }, async (_, i) => await login(env.PORT as string, `slow.${signal}.${i}`)) // each code once
    await new Promise((resolve) => setTimeout(resolve, 400))
    process.kill(-p.pid, signal) // the primary and both workers, as a terminal's Ctrl-C or systemd's stop
    t.same(await Promise.all(inFlight), [200, 200, 200, 200], `${signal}: every login in flight answered`)
    t.equal(await p.exited, 0, `${signal}: the primary exits 0`)
    t.notMatch(p.output(), /second SIG/, `${signal}: no worker took the primary's message for a second signal`)
    t.equal(count(p.output(), 'shutting down: draining requests in flight'), 2, `${signal}: each worker drained once`)
  }
})

test('every worker killed at once: the primary stays, starts others, and they serve', { skip: unbuilt() }, async (t) => {
  const env = await envFor(t)
  const p = run(env)
  t.teardown(() => { p.kill('SIGKILL') })
  await p.until((out) => count(out, 'Server listening') === 2, 'two workers listening', 20_000)
  const pids = [...p.output().matchAll(/"pid":(\d+)[^\n]*Server listening/g)].map((m) => Number(m[1]))
  t.equal(pids.length, 2)
  for (const pid of pids) process.kill(pid, 'SIGKILL')
  await p.until((out) => count(out, 'Server listening') === 4, 'two workers started again', 20_000)
  t.equal(count(p.output(), 'a worker died; starting another'), 2)
  t.equal(await login(env.PORT as string, 'alice.again'), 200, 'served again')
  p.kill()
  t.equal(await p.exited, 0)
})

test('workers that cannot start (their port taken): the primary exits 1, told why, as one process would', { skip: unbuilt() }, async (t) => {
  const env = await envFor(t)
  const taken = createServer().listen(Number(env.PORT), '127.0.0.1')
  t.teardown(() => { taken.close() })
  await new Promise((resolve) => taken.once('listening', resolve))
  const p = run(env)
  t.teardown(() => { p.kill('SIGKILL') })
  const started = Date.now()
  t.equal(await p.exited, 1)
  t.ok(Date.now() - started < 15_000, 'at once, not after restarts')
  t.match(p.output(), /"role":"primary".*"msg":"a worker could not start: stopping"/)
  t.match(p.output(), /EADDRINUSE/, 'the worker said why')
})

test('a worker that does not drain in time (a request longer than the drain) makes the primary exit 1', { skip: unbuilt() }, async (t) => {
  const env = await envFor(t, 14_000)
  const p = run(env)
  t.teardown(() => { p.kill('SIGKILL') })
  await p.until((out) => count(out, 'Server listening') === 2, 'two workers listening', 20_000)
  const inFlight = login(env.PORT as string, 'slow')
  await new Promise((resolve) => setTimeout(resolve, 400))
  p.kill()
  t.equal(await p.exited, 1, 'the primary fails the stop')
  t.match(p.output(), /killed by timeout/, 'the worker\'s drain timed out')
  t.match(p.output(), /"msg":"every worker has stopped"/)
  t.not(await inFlight, 200)
})

test('the primary\'s own lines follow LOG_LEVEL, as the workers\' do', { skip: unbuilt() }, async (t) => {
  const env = await envFor(t)
  const p = run({ ...env, LOG_LEVEL: 'warn' })
  t.teardown(() => { p.kill('SIGKILL') })
  const live = async (): Promise<boolean> => await request(`http://127.0.0.1:${env.PORT}/health/live`).then(async (r) => { await r.body.dump(); return r.statusCode === 200 }, () => false)
  for (let i = 0; i < 200 && !(await live()); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  p.kill()
  t.equal(await p.exited, 0)
  t.equal(count(p.output(), '"role":"primary"'), 0, `no info line of the primary at warn: ${p.output().slice(0, 300)}`)
})

test('with LOG_LEVEL=silent, workers that cannot start still make the primary say why on stderr', { skip: unbuilt() }, async (t) => {
  const env = await envFor(t)
  const taken = createServer().listen(0, '127.0.0.1')
  t.teardown(() => { taken.close() })
  await new Promise((resolve) => taken.once('listening', resolve))
  const p = run({ ...env, LOG_LEVEL: 'silent', PORT: String((taken.address() as AddressInfo).port) })
  t.teardown(() => { p.kill('SIGKILL') })
  t.equal(await p.exited, 1)
  t.match(p.errors(), /fastify-wechat-auth: a worker could not start: stopping/)
  t.equal(count(p.output(), '"role":"primary"'), 0, 'and no JSON line')
})

test('a stop while the workers still start: they stop at once, the primary exits 0', { skip: unbuilt() }, async (t) => {
  const env = await envFor(t)
  const p = run(env)
  t.teardown(() => { p.kill('SIGKILL') })
  await p.until((out) => out.includes('starting workers'), 'the primary', 10_000)
  const stoppedAt = Date.now()
  p.kill()
  t.equal(await p.exited, 0, 'a worker stopped as it started is no failure')
  t.ok(Date.now() - stoppedAt < 5000, `exited ${Date.now() - stoppedAt} ms after the signal, not at the drain's deadline`)
  t.notMatch(p.output(), /did not stop in time/)
})

test('a worker whose admin API cannot listen (ADMIN_PORT taken) is a gateway that cannot start: exit 1', { skip: unbuilt() }, async (t) => {
  const env = await envFor(t)
  const taken = createServer().listen(0, '127.0.0.1')
  t.teardown(() => { taken.close() })
  await new Promise((resolve) => taken.once('listening', resolve))
  const p = run({ ...env, ADMIN_PORT: String((taken.address() as AddressInfo).port), ADMIN_TOKEN: 'an-admin-token-0123456789-abcdefghijkl' })
  t.teardown(() => { p.kill('SIGKILL') })
  t.equal(await p.exited, 1)
  t.match(p.output(), /"msg":"a worker could not start: stopping"/)
  t.equal(count(p.output(), 'a worker died; starting another'), 0, 'not restarted in a loop')
})
