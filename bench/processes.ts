// The processes a benchmark run starts and stops (redis-server, the WeChat simulator, the gateway), and
// the CPU time they use.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
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

export const APPID = 'wx0123456789abcdef'
const SECRET = 'bench-secret-0123456789abcdef'
/** The gateway's rate limits during a run: the load comes from one IP, but the limits stay in the path. */
export const RAISED_LIMIT = 1_000_000_000

export interface Stack {
  /** The gateway's base URL. */
  base: string
  redisUrl: string
  procs: { gateway: Proc, redis: Proc, simulator: Proc }
  /** Stops every process still running, the gateway first. */
  stop: () => Promise<void>
}

/**
 * Starts redis-server, the WeChat simulator and the gateway, each in its own process, the gateway with
 * the production setup (Redis store, revocation checks on). `profile` writes a V8 CPU profile of the
 * gateway to bench/results/ (see bench/profile-top.ts).
 */
export async function startStack (profile: boolean): Promise<Stack> {
  const started: Proc[] = []
  const stop = async (): Promise<void> => { for (const p of [...started].reverse()) await p.stop() }
  try {
    const [redisPort, simPort, gwPort] = [await freePort(), await freePort(), await freePort()]
    const redisUrl = `redis://127.0.0.1:${redisPort}`
    const redis = await startRedis(redisPort)
    started.push(redis)
    const simulator = start('simulator', process.execPath, [join(paths.dist, 'simulator/cli.js')], { PORT: String(simPort), WECHAT_APPID: APPID, WECHAT_SECRET: SECRET })
    started.push(simulator)
    await waitFor(`http://127.0.0.1:${simPort}/sns/jscode2session`, simulator)
    const profileArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${paths.results}`] : []
    const gateway = start('gateway', process.execPath, [...profileArgs, join(paths.dist, 'server.js')], {
      NODE_ENV: 'production',
      PORT: String(gwPort),
      LOG_LEVEL: 'warn',
      WECHAT_APPID: APPID,
      WECHAT_SECRET: SECRET,
      WECHAT_API_BASE: `http://127.0.0.1:${simPort}`,
      REDIS_URL: redisUrl,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      RATE_LIMIT_LOGIN_MAX: String(RAISED_LIMIT),
      RATE_LIMIT_REFRESH_MAX: String(RAISED_LIMIT)
    })
    started.push(gateway)
    const base = `http://127.0.0.1:${gwPort}`
    await waitFor(`${base}/health`, gateway)
    return { base, redisUrl, procs: { gateway, redis, simulator }, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
