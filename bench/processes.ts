// The processes a benchmark run starts and stops (redis-server, the WeChat simulator, the gateway); the
// CPU time they use is read by cpu.ts.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { paths } from './paths.js'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

export interface Proc {
  name: string
  child: ChildProcess
  output: () => string
  stop: () => Promise<void>
}

export function start (name: string, command: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (d: Buffer): void => { out = (out + d.toString()).slice(-20_000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return {
    name,
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))])
    }
  }
}

/** Polls `url` until it answers `status`, or fails with the process's output. */
export async function waitFor (url: string, proc: Proc, status = 200, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited:\n${proc.output()}`)
    try {
      const res = await request(url)
      await res.body.dump()
      if (res.statusCode === status) return
    } catch {}
    await sleep(50)
  }
  throw new Error(`${proc.name} did not answer ${url} in time:\n${proc.output()}`)
}

export async function startRedis (port: number): Promise<Proc> {
  const proc = start('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'])
  await new Promise<void>((resolve, reject) => {
    proc.child.once('error', (err) => reject(new Error(`cannot run redis-server (apt-get install -y redis-server): ${err.message}`)))
    const t = setInterval(() => { if (proc.output().includes('Ready to accept connections')) { clearInterval(t); resolve() } }, 20)
  })
  return proc
}

/** A replica of the Redis on `masterPort`, in sync: in a directory of its own (a full sync writes an RDB file there). */
async function startReplica (masterPort: number): Promise<Proc> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'bench-replica-'))
  const proc = start('redis-replica', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--replicaof', '127.0.0.1', String(masterPort)])
  const deadline = Date.now() + 15_000
  while (!proc.output().includes('MASTER <-> REPLICA sync: Finished with success')) {
    if (Date.now() > deadline) throw new Error(`the replica did not sync in time:\n${proc.output()}`)
    await sleep(20)
  }
  const stop = proc.stop
  return { ...proc, stop: async () => { await stop(); rmSync(dir, { recursive: true, force: true }) } }
}

export const APPID = 'wx0123456789abcdef'
export const SECRET = 'bench-secret-0123456789abcdef'
/** The gateway's rate limits during a run: the load comes from one IP, but the limits stay in the path. */
export const RAISED_LIMIT = 1_000_000_000

/** A gateway the run measures: one process, or a primary with `workers` workers on one port. */
export interface GatewaySpec {
  /** How the report names it. */
  label: string
  workers: number
  /** With METRICS_PORT (a free port), so that Prometheus metrics count every request. */
  metrics: boolean
  /** More of its environment (REDIS_WAIT_REPLICAS). */
  env?: Record<string, string>
  /** The directory of the server.js it runs: another tree's dist/ (BENCH_BASELINE), the floor's (BENCH_FLOOR); this tree's dist/ by default. */
  dist?: string
}

export interface Gateway extends GatewaySpec {
  /** Its base URL. */
  base: string
  proc: Proc
  /** Stops its process and starts a fresh one on the same port and setup (no CPU profile): BENCH_RESTART. */
  restart: () => Promise<Proc>
}

export interface StackOptions {
  /** The gateways, all against the same Redis, simulator and JWT secret. */
  gateways: GatewaySpec[]
  /** Writes a V8 CPU profile of the first gateway to bench/results/ (bench/profile-top.ts). */
  profile: boolean
  /** Gives Redis a replica (its own process, an empty directory of its own), for REDIS_WAIT_REPLICAS. */
  replica?: boolean
  /** Node's own options for every gateway process (BENCH_NODE_ARGS), before its server.js; workers inherit them. */
  nodeArgs?: string[]
}

export interface Stack {
  redisUrl: string
  redis: Proc
  simulator: Proc
  /** The simulator's base URL (the gateways' WECHAT_API_BASE). */
  simulatorUrl: string
  /** As StackOptions.gateways lists them. */
  gateways: Gateway[]
  /** Stops every process still running, the gateways first. */
  stop: () => Promise<void>
}

/**
 * Starts redis-server, the WeChat simulator and the gateways, each in its own process, the gateways
 * with the production setup (Redis store, revocation checks on). They share Redis, the simulator and
 * the JWT secret, so a session opened through one is good on the others.
 */
export async function startStack (options: StackOptions): Promise<Stack> {
  const started: Proc[] = []
  const stop = async (): Promise<void> => { for (const p of [...started].reverse()) await p.stop() }
  try {
    const [redisPort, simPort] = [await freePort(), await freePort()]
    const redisUrl = `redis://127.0.0.1:${redisPort}`
    const redis = await startRedis(redisPort)
    started.push(redis)
    if (options.replica === true) started.push(await startReplica(redisPort))
    const simulator = start('simulator', process.execPath, [join(paths.dist, 'simulator/cli.js')], { PORT: String(simPort), WECHAT_APPID: APPID, WECHAT_SECRET: SECRET })
    started.push(simulator)
    await waitFor(`http://127.0.0.1:${simPort}/sns/jscode2session`, simulator)
    const env = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      WECHAT_APPID: APPID,
      WECHAT_SECRET: SECRET,
      WECHAT_API_BASE: `http://127.0.0.1:${simPort}`,
      REDIS_URL: redisUrl,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      RATE_LIMIT_LOGIN_MAX: String(RAISED_LIMIT),
      RATE_LIMIT_REFRESH_MAX: String(RAISED_LIMIT)
    }
    const gateways: Gateway[] = []
    const nodeArgs = options.nodeArgs ?? []
    for (const [i, spec] of options.gateways.entries()) gateways.push(await startGateway(env, spec, { nodeArgs, profile: options.profile && i === 0 }, started))
    return { redisUrl, redis, simulator, simulatorUrl: env.WECHAT_API_BASE, gateways, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

async function startGateway (env: Record<string, string>, spec: GatewaySpec, args: { nodeArgs: string[], profile: boolean }, started: Proc[]): Promise<Gateway> {
  const [port, metricsPort] = [await freePort(), spec.metrics ? await freePort() : null]
  const base = `http://127.0.0.1:${port}`
  const launch = async (profile: boolean): Promise<Proc> => {
    const proc = start(spec.label, process.execPath, [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${paths.results}`] : []), ...args.nodeArgs, join(spec.dist ?? paths.dist, 'server.js')], {
      ...env,
      ...spec.env,
      PORT: String(port),
      WORKERS: String(spec.workers),
      ...(metricsPort === null ? {} : { METRICS_PORT: String(metricsPort) })
    })
    started.push(proc)
    await waitFor(`${base}/health`, proc)
    // Metrics are on: their listener answers (with workers, the primary's sum of theirs).
    if (metricsPort !== null) await waitFor(`http://127.0.0.1:${metricsPort}/metrics`, proc)
    return proc
  }
  const gateway: Gateway = {
    ...spec,
    base,
    proc: await launch(args.profile),
    restart: async () => {
      await gateway.proc.stop()
      gateway.proc = await launch(false)
      return gateway.proc
    }
  }
  return gateway
}
