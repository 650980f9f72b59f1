// Test support: a real redis-server per test file (or REDIS_URL), the WeChat simulator over real
// HTTP, and gateway instances built with the same Fastify options as production.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import wechatAuth, { type WechatAuthOptions } from '../app.js'
import type { ConfigInput } from '../lib/schemas.js'
import { LIBRARY_NAME } from '../lib/store/redis-functions.js'
import { serverOptions } from '../http/server-options.js'
import { startSimulator, type Simulator, type SimulatorOptions } from '../simulator/index.js'

type Tap = { teardown: (fn: () => unknown) => void }

export const APPID = 'wx0123456789abcdef'
export const SECRET = 'test-app-secret-0123456789abcdef'
export const JWT_SECRET = 'test-jwt-secret-which-is-long-enough-0123456789'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

export interface RedisServer {
  url: string
  /** A key prefix no other test uses, so tests can share one server (REDIS_URL) safely. */
  prefix: string
  stop: () => Promise<void>
  start: () => Promise<void>
  /** Freezes the server (SIGSTOP): it keeps its connections and answers nothing, like a hung host. */
  pause: () => void
  resume: () => void
}

async function waitForRedis (url: string, timeoutMs: number, gaveUp = (): boolean => false): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && !gaveUp()) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, connectTimeout: 1000, commandTimeout: 1000 })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
      probe.disconnect()
      return
    } catch {
      probe.disconnect()
      await sleep(50)
    }
  }
  throw new Error(`redis at ${url} did not start`)
}

/**
 * A Redis for this test file. With REDIS_URL set (and `own` false) that server is used with a
 * unique key prefix; otherwise a redis-server is started on a free port, and can be stopped and
 * restarted on the same port to test outages.
 */
export async function startRedis (t: Tap, opts: { own?: boolean } = {}): Promise<RedisServer> {
  const prefix = `t${randomBytes(4).toString('hex')}:`
  const shared = process.env.REDIS_URL
  if (shared !== undefined && shared !== '' && opts.own !== true) {
    const refuse = (): never => { throw new Error('cannot stop or pause a shared REDIS_URL') }
    return { url: shared, prefix, stop: async () => refuse(), start: async () => {}, pause: refuse, resume: refuse }
  }
  const { port, proc: first } = await spawnRedisOnFreePort(() => [])
  let proc: ChildProcess | null = first
  // Started again on the same port, for outage tests.
  const start = async (): Promise<void> => { proc = await spawnRedis(port, []) }
  const stop = async (): Promise<void> => {
    const p = proc
    proc = null
    await killRedis(p)
  }
  t.teardown(stop)
  const signal = (sig: NodeJS.Signals) => () => { (proc as ChildProcess | null)?.kill(sig) }
  return { url: `redis://127.0.0.1:${port}`, prefix, stop, start, pause: signal('SIGSTOP'), resume: signal('SIGCONT') }
}

/** redis-server on `port`, once it answers; fails at once if it exits first (its port was taken, say). */
export async function spawnRedis (port: number, args: string[]): Promise<ChildProcess> {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], { stdio: 'ignore' })
  let ended = false
  try {
    await Promise.race([
      waitForRedis(`redis://127.0.0.1:${port}`, 10_000, () => ended),
      new Promise((_resolve, reject) => p.once('error', (err) =>
        reject(new Error(`cannot run redis-server (apt-get install -y redis-server): ${err.message}`)))),
      new Promise((_resolve, reject) => p.once('exit', (code) =>
        reject(new Error(`redis-server on port ${port} exited as it started (code ${String(code)}): its port taken?`))))
    ])
  } catch (err) {
    ended = true
    p.kill('SIGKILL')
    throw err
  }
  return p
}

async function portIsFree (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => { resolve(false) })
    srv.listen(port, '127.0.0.1', () => { srv.close(() => { resolve(true) }) })
  })
}

/**
 * redis-server on a free port, or on another when something else bound it first (a free port is free
 * only until then: test files run in parallel, each starting servers); with `cluster`, its bus port
 * (port + 10000) free too. `argsFor` gives the arguments for the port chosen.
 */
export async function spawnRedisOnFreePort (argsFor: (port: number) => string[], opts: { cluster?: boolean } = {}): Promise<{ port: number, proc: ChildProcess }> {
  let failure: unknown = new Error('no free port for redis-server')
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    if (opts.cluster === true && !(port + 10_000 <= 65_535 && await portIsFree(port + 10_000))) continue
    try {
      return { port, proc: await spawnRedis(port, argsFor(port)) }
    } catch (err) {
      failure = err
    }
  }
  throw failure
}

export async function killRedis (p: ChildProcess | null): Promise<void> {
  if (p === null || p.exitCode !== null) return
  await new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill('SIGKILL') })
}

/**
 * A Redis master watched by one Sentinel (quorum 1) under the name `master`, both on free ports,
 * stopped at teardown (always started here, whatever REDIS_URL says).
 */
export async function startRedisSentinel (t: Tap): Promise<{ name: string, sentinel: { host: string, port: number } }> {
  const dir = await mkdtemp(join(tmpdir(), 'wxauth-sentinel-'))
  const procs: ChildProcess[] = []
  t.teardown(async () => {
    await Promise.all(procs.map(killRedis))
    await rm(dir, { recursive: true, force: true })
  })
  const { port: masterPort, proc: master } = await spawnRedisOnFreePort(() => [])
  procs.push(master)
  const sentinelPort = await freePort()
  const conf = join(dir, 'sentinel.conf')
  await writeFile(conf, `sentinel monitor master 127.0.0.1 ${masterPort} 1\n`)
  const p = spawn('redis-server', [conf, '--sentinel', '--port', String(sentinelPort), '--bind', '127.0.0.1'], { stdio: 'ignore' })
  procs.push(p)
  await waitForRedis(`redis://127.0.0.1:${sentinelPort}`, 10_000)
  return { name: 'master', sentinel: { host: '127.0.0.1', port: sentinelPort } }
}

/**
 * A Redis Cluster of three masters on free ports, slots split evenly, stopped at teardown (always
 * started here, whatever REDIS_URL says). Resolves once every node reports the cluster ok.
 */
export async function startRedisCluster (t: Tap): Promise<{ nodes: Array<{ host: string, port: number }> }> {
  const dir = await mkdtemp(join(tmpdir(), 'wxauth-cluster-'))
  const procs: ChildProcess[] = []
  t.teardown(async () => {
    await Promise.all(procs.map(killRedis))
    await rm(dir, { recursive: true, force: true })
  })
  const ports: number[] = []
  for (let i = 0; i < 3; i++) {
    const { port, proc } = await spawnRedisOnFreePort((port) => ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir], { cluster: true })
    ports.push(port)
    procs.push(proc)
  }
  const admins = ports.map((port) => redisClient(t, `redis://127.0.0.1:${port}`))
  const third = Math.floor(16384 / 3)
  await Promise.all(admins.map(async (admin, i) =>
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', String(i * third), String(i === 2 ? 16383 : (i + 1) * third - 1))))
  for (const port of ports.slice(1)) await admins[0]?.call('CLUSTER', 'MEET', '127.0.0.1', String(port))
  const deadline = Date.now() + 20_000
  for (;;) {
    const infos = await Promise.all(admins.map(async (admin) => String(await admin.call('CLUSTER', 'INFO'))))
    if (infos.every((info) => info.includes('cluster_state:ok') && info.includes('cluster_known_nodes:3'))) break
    if (Date.now() > deadline) throw new Error('the Redis Cluster did not form')
    await sleep(100)
  }
  return { nodes: ports.map((port) => ({ host: '127.0.0.1', port })) }
}

/** Calls, refusals and failures of `command` (a subcommand as `function|load`) since Redis' last RESETSTAT (INFO commandstats; 0 when never sent). */
export async function commandStats (admin: Redis, command: string): Promise<{ calls: number, rejected: number, failed: number }> {
  const line = new RegExp(`^cmdstat_${command.replace('|', '\\|')}:calls=(\\d+).*rejected_calls=(\\d+),failed_calls=(\\d+)`, 'm').exec(await admin.info('commandstats'))
  return { calls: Number(line?.[1] ?? 0), rejected: Number(line?.[2] ?? 0), failed: Number(line?.[3] ?? 0) }
}

/** Whether the Redis `admin` talks to holds this version's library of the store's scripts (lib/store/redis-functions.ts). */
export const hasScriptsLibrary = async (admin: Redis): Promise<boolean> =>
  (await admin.call('FUNCTION', 'LIST', 'LIBRARYNAME', LIBRARY_NAME) as unknown[]).length === 1

/** An ioredis client for assertions, closed at teardown. */
export function redisClient (t: Tap, url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

export async function startSim (t: Tap, opts: SimulatorOptions = {}): Promise<Simulator> {
  const sim = await startSimulator({ appid: APPID, secret: SECRET, ...opts })
  t.teardown(async () => await sim.close())
  return sim
}

export interface BuildOptions extends Omit<WechatAuthOptions, 'config' | 'env'> {
  sim: Simulator
  redis?: WechatAuthOptions['redis']
  redisServer?: RedisServer
  config?: ConfigInput
  /** Collects every log line written (as raw JSON text). */
  logs?: string[]
  /** Registers more routes (as a host app would) before the instance is ready. */
  extend?: (app: FastifyInstance) => void
}

/** A gateway instance like the standalone server's, closed at teardown. */
export async function buildApp (t: Tap, opts: BuildOptions): Promise<FastifyInstance> {
  const { sim, redisServer, config, logs, extend, ...pluginOpts } = opts
  const fullConfig: ConfigInput = {
    WECHAT_APPID: sim.appid,
    WECHAT_SECRET: sim.secret,
    WECHAT_API_BASE: sim.url,
    JWT_SECRET,
    LOG_LEVEL: logs === undefined ? 'silent' : 'trace',
    // Tests of other things make more requests per minute than the defaults allow.
    RATE_LIMIT_LOGIN_MAX: 100_000,
    RATE_LIMIT_REFRESH_MAX: 100_000,
    ...(redisServer !== undefined ? { REDIS_URL: redisServer.url, REDIS_KEY_PREFIX: redisServer.prefix } : {}),
    ...config
  }
  const logStream = logs === undefined ? undefined : { write: (line: string) => { logs.push(line) } }
  const app = Fastify(serverOptions({ LOG_LEVEL: fullConfig.LOG_LEVEL as 'info', TRUST_PROXY: String(fullConfig.TRUST_PROXY ?? 'false'), ...(typeof fullConfig.STORE_TIMEOUT_MS === 'number' ? { STORE_TIMEOUT_MS: fullConfig.STORE_TIMEOUT_MS } : {}) }, { logStream }))
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { ...pluginOpts, config: fullConfig, env: false })
  extend?.(app)
  await app.ready()
  return app
}

export const json = <T = Record<string, unknown>>(res: LightMyRequestResponse): T => res.json<T>()

export interface Pair {
  accessToken: string
  refreshToken: string
  openid: string
  unionid?: string
  expiresIn: number
  refreshExpiresIn: number
  tokenType: string
}

export async function login (app: FastifyInstance, code: string, prefix = '/auth'): Promise<Pair> {
  const res = await app.inject({ method: 'POST', url: `${prefix}/login`, payload: { code } })
  if (res.statusCode !== 200) throw new Error(`login ${code} failed: ${res.statusCode} ${res.body}`)
  return res.json<Pair>()
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

export async function refresh (app: FastifyInstance, refreshToken: string, prefix = '/auth'): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url: `${prefix}/refresh`, payload: { refreshToken } })
}

export async function me (app: FastifyInstance, accessToken: string, prefix = '/auth'): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'GET', url: `${prefix}/me`, headers: bearer(accessToken) })
}

/** Sets environment variables for one test (a polluted host environment), restored at teardown. */
export function withEnv (t: Tap, values: Record<string, string>): void {
  const saved = Object.fromEntries(Object.keys(values).map((k) => [k, process.env[k]]))
  Object.assign(process.env, values)
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Reflect.deleteProperty(process.env, k)
      else process.env[k] = v
    }
  })
}

/** A session check's outcome: 'ok' for a live session's access state, else what the store said. */
export const statusOf = (r: unknown): unknown => typeof r === 'object' && r !== null && 'status' in r ? (r as { status: unknown }).status : r

/**
 * Registers `plugin` (with `opts`) on `app` and asserts that the boot fails for want of `dependency`,
 * Fastify naming it and the plugin (`name`): a plugin registered before what it needs.
 */
export async function refusedWithout (t: Pick<Test, 'rejects'>, app: FastifyInstance, plugin: unknown, opts: object, dependency: string, name: string): Promise<void> {
  await t.rejects(async () => { await app.register(plugin as never, opts as never); await app.ready() },
    { code: 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED', message: `The dependency '${dependency}' of plugin '${name}' is not registered` }, `${name} without ${dependency}`)
}
