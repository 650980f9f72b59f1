// The processes a benchmark run starts and stops (redis-server, the WeChat simulator, the gateway), and
// the CPU time they use.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
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

/** Seconds in two adjacent /proc/<pid>/stat fields (clock ticks of 1/100 s), counted after the name. */
export function ticksOf (stat: string, first: number): number {
  const fields = stat.split(') ')[1]?.split(' ') ?? []
  return (Number(fields[first]) + Number(fields[first + 1])) / 100
}

/** CPU seconds a process has used so far (Linux /proc; 0 elsewhere). */
export function cpuSeconds (pid: number | undefined): number {
  try {
    return ticksOf(readFileSync(`/proc/${pid ?? 0}/stat`, 'utf8'), 11) // utime + stime
  } catch {
    return 0
  }
}

/**
 * CPU seconds a process and its descendants have used so far: its own time, its children's that it
 * has waited for (a worker that died), and every live descendant's (a primary's own stat does not
 * count its live workers). Linux /proc; 0 elsewhere.
 */
export function treeCpuSeconds (pid: number | undefined): number {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid ?? 0}/stat`, 'utf8')
  } catch {
    return 0
  }
  const own = ticksOf(stat, 11) + ticksOf(stat, 13) // utime + stime, cutime + cstime
  return childrenOf(pid ?? 0).reduce((sum, child) => sum + treeCpuSeconds(child), own)
}

/**
 * CPU seconds every process of the machine has used since boot (/proc/stat: user, nice, system; the
 * interrupt and softirq time, much of it loopback traffic of the run, not included), and the time the
 * hypervisor gave to other machines (steal). Zeros elsewhere than on Linux.
 */
export function machineCpuSeconds (): { busy: number, steal: number } {
  try {
    const [user, nice, system, , , , , steal] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number)
    return { busy: ((user ?? 0) + (nice ?? 0) + (system ?? 0)) / 100, steal: (steal ?? 0) / 100 }
  } catch {
    return { busy: 0, steal: 0 }
  }
}

// /proc/<pid>/task/<tid>/children needs a kernel built with CONFIG_PROC_CHILDREN; without it every
// process's parent is read instead.
const childrenFiles = existsSync(`/proc/${process.pid}/task/${process.pid}/children`)

function childrenOf (pid: number): number[] {
  const read = (file: string): string => { try { return readFileSync(file, 'utf8') } catch { return '' } }
  if (!childrenFiles) {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d))
      .filter((d) => read(`/proc/${d}/stat`).split(') ')[1]?.split(' ')[1] === String(pid)).map(Number)
  }
  let tasks: string[] = []
  try { tasks = readdirSync(`/proc/${pid}/task`) } catch {}
  return tasks.flatMap((tid) => read(`/proc/${pid}/task/${tid}/children`).split(' ').filter((c) => c.trim() !== '').map(Number))
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
    for (const [i, spec] of options.gateways.entries()) gateways.push(await startGateway(env, spec, [...(options.profile && i === 0 ? ['--cpu-prof', `--cpu-prof-dir=${paths.results}`] : []), ...nodeArgs], started))
    return { redisUrl, redis, simulator, simulatorUrl: env.WECHAT_API_BASE, gateways, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

async function startGateway (env: Record<string, string>, spec: GatewaySpec, nodeArgs: string[], started: Proc[]): Promise<Gateway> {
  const [port, metricsPort] = [await freePort(), spec.metrics ? await freePort() : null]
  const proc = start(spec.label, process.execPath, [...nodeArgs, join(spec.dist ?? paths.dist, 'server.js')], {
    ...env,
    ...spec.env,
    PORT: String(port),
    WORKERS: String(spec.workers),
    ...(metricsPort === null ? {} : { METRICS_PORT: String(metricsPort) })
  })
  started.push(proc)
  const base = `http://127.0.0.1:${port}`
  await waitFor(`${base}/health`, proc)
  // Metrics are on: their listener answers (with workers, the primary's sum of theirs).
  if (metricsPort !== null) await waitFor(`http://127.0.0.1:${metricsPort}/metrics`, proc)
  return { ...spec, base, proc }
}
