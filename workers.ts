// WORKERS: the standalone gateway on several cores. The primary process forks that many workers
// (node:cluster: they share the listening sockets and the primary hands out the connections), restarts
// a worker that dies with a growing delay while it keeps dying (and exits 1 when none could start, as a
// single process does), and on SIGTERM, SIGINT or SIGHUP asks every worker to drain by a message (each
// closes like a single-process gateway: stopping.ts) and exits once they have: 1 if one did not drain.
// The primary serves nothing and holds no session: state is in Redis, which WORKERS > 1 requires
// (lib/config.ts). With METRICS_PORT the primary also answers GET /metrics, the sum of what
// each worker counts (server.ts), because a scrape through the shared port would reach one worker.
import cluster from 'node:cluster'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { STOP_MESSAGE, onStopSignals } from './stopping.js'

const readText = (path: string): string | undefined => { try { return readFileSync(path, 'utf8') } catch { return undefined } }

/**
 * The cores a container's CPU limit grants (Docker's `--cpus`, Kubernetes' `limits.cpu`), rounded up;
 * undefined without a limit. Node 20's availableParallelism() sees the host's cores, not the limit:
 * `auto` in a one-core container on a 32-core host forked 32 workers. cgroup v2, then v1.
 */
export function cgroupCores (read: (path: string) => string | undefined = readText): number | undefined {
  const [quota, period] = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/) ??
    [read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim(), read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim()]
  const cores = Number(quota) / Number(period)
  return Number.isFinite(cores) && cores > 0 ? Math.ceil(cores) : undefined
}

/** How many workers WORKERS asks for: a number, or `auto` for the cores this process may use. */
export function workerCount (value: string, cores = cgroupCores()): number {
  return value === 'auto' ? Math.min(availableParallelism(), cores ?? Infinity) : Number(value)
}

// LOG_LEVEL as pino's number: the primary's lines follow it, as the workers' do (runPrimary sets it).
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity }
let lowestLevel = 30

// One JSON line, in the shape of the workers' pino lines, so that one log pipeline reads both.
function log (level: 30 | 40 | 50, msg: string, extra: Record<string, unknown> = {}): void {
  if (level < lowestLevel) {
    // A silent log says nothing: an error (why the gateway stops) still reaches stderr, as one process's does.
    if (level >= 50) process.stderr.write(`fastify-wechat-auth: ${msg}\n`)
    return
  }
  process.stdout.write(`${JSON.stringify({ level, time: Date.now(), pid: process.pid, role: 'primary', ...extra, msg })}\n`)
}

const FIRST_DELAY_MS = 500
const MAX_DELAY_MS = 30_000
// A worker that lived this long was healthy: the next death restarts at once again.
const HEALTHY_AFTER_MS = 10_000

/** The environment variable that tells a worker its slot (0 to WORKERS - 1): its metrics' `worker` label. */
export const WORKER_SLOT_ENV = 'WECHAT_AUTH_WORKER'

// prom-client's messages between the primary and a worker's registry (prom-client/lib/cluster.js).
const METRICS_REQUEST = 'prom-client:getMetricsReq'
const METRICS_ANSWER = 'prom-client:getMetricsRes'
let nextRequest = 0

/**
 * What each worker's registry holds, as prom-client's AggregatorRegistry asks for it, but waiting at
 * most `timeoutMs` and keeping what came: a worker starting or dying does not fail the whole scrape
 * (prom-client's own waits 5 s, then fails it). `missing` says how many did not answer.
 */
export async function workerMetrics (timeoutMs: number): Promise<{ metrics: unknown[], answered: number, missing: number }> {
  const workers = Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected() === true)
  const requestId = `wechat-auth-${process.pid}-${nextRequest++}`
  const metrics: unknown[] = []
  let answered = 0
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, timeoutMs)
    function done (): void {
      clearTimeout(timer)
      cluster.off('message', onMessage)
      resolve()
    }
    function onMessage (_worker: unknown, message: { type?: string, requestId?: unknown, metrics?: unknown[] }): void {
      if (message?.type !== METRICS_ANSWER || message.requestId !== requestId) return
      answered++
      metrics.push(...(message.metrics ?? []))
      if (answered === workers.length) done()
    }
    cluster.on('message', onMessage)
    for (const worker of workers) worker?.send({ type: METRICS_REQUEST, requestId })
    if (workers.length === 0) done()
  })
  return { metrics, answered, missing: workers.length - answered }
}

/** What a worker sends the primary once every listener of its is up (server.ts). */
export const READY_MESSAGE = { type: 'wechat-auth:ready' } as const

/**
 * A worker of the primary's, by id: when it was forked, its slot (0 to count - 1, kept by its
 * replacement), whether it is ready, and whether a stop found it starting (then stopped by a signal:
 * its exit fails nothing).
 */
interface Started { at: number, slot: number, ready: boolean, startingAtStop: boolean }

/**
 * Asks every worker to drain: by a message, not a signal, so that a worker its process group signalled
 * as well drains once (stopping.ts). One still starting has no listener for it yet: a signal stops it,
 * as before it serves.
 */
function askToStop (started: Map<number, Started>): void {
  for (const worker of Object.values(cluster.workers ?? {})) {
    const entry = worker === undefined ? undefined : started.get(worker.id)
    if (worker?.isConnected() === true && entry?.ready === true) {
      worker.send(STOP_MESSAGE)
    } else {
      if (entry !== undefined) entry.startingAtStop = true
      worker?.process.kill('SIGTERM')
    }
  }
}

/** A listener the primary runs itself (the metrics'). */
export interface PrimaryListener { close: () => Promise<void> }

/**
 * Runs the primary: `count` workers, restarted when they die, drained on SIGTERM/SIGINT; `listen`
 * starts the primary's own listener, which closes first on a stop.
 */
export function runPrimary (count: number, drainMs: number, listen?: () => Promise<PrimaryListener>, logLevel = 'info'): void {
  lowestLevel = LEVELS[logLevel] ?? 30
  let listener: PrimaryListener | null = null
  let stopping = false
  let delay = FIRST_DELAY_MS
  let served = false // a worker was ready once: until then, a worker that dies is a gateway that cannot start
  const started = new Map<number, Started>()
  const kill = (signal: NodeJS.Signals): void => { for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal) }

  const fork = (slot: number): void => {
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot) })
    started.set(worker.id, { at: Date.now(), slot, ready: false, startingAtStop: false })
  }
  cluster.on('message', (worker, message: { type?: unknown } | null) => {
    const entry = started.get(worker.id)
    if (message?.type !== READY_MESSAGE.type || entry === undefined) return
    entry.ready = true
    served = true
  })

  cluster.on('exit', (worker, code, signal) => {
    const { at, slot, startingAtStop } = started.get(worker.id) ?? { at: 0, slot: 0, startingAtStop: false }
    const lived = Date.now() - at
    started.delete(worker.id)
    if (stopping) {
      // A worker that did not drain cleanly (its deadline, an error) fails the whole stop.
      if (code !== 0 && !startingAtStop) process.exitCode = 1
      if (started.size === 0) {
        log(30, 'every worker has stopped', { exitCode: process.exitCode ?? 0 })
        process.exit()
      }
      return
    }
    if (!served) {
      // As a single process that cannot start (its port taken, Redis unreachable): exit 1, told why.
      log(50, 'a worker could not start: stopping', { worker: worker.process.pid, code, signal })
      process.exitCode = 1
      stop('a worker could not start')
      return
    }
    delay = lived >= HEALTHY_AFTER_MS ? FIRST_DELAY_MS : Math.min(delay * 2, MAX_DELAY_MS)
    const wait = lived >= HEALTHY_AFTER_MS ? 0 : delay
    log(40, 'a worker died; starting another', { worker: worker.process.pid, code, signal, restartInMs: wait })
    // Not unref'd: with every worker gone, this timer alone keeps the primary (and the gateway) alive.
    setTimeout(() => { if (!stopping) fork(slot) }, wait)
  })

  function stop (why: string): void {
    if (stopping) return
    stopping = true
    log(30, 'stopping: every worker drains', { signal: why, workers: started.size })
    listener?.close().catch(() => {})
    askToStop(started)
    if (started.size === 0) process.exit() // 0, or the exitCode a failed start set
    // A worker that does not finish draining in time is stopped.
    setTimeout(() => {
      log(50, 'workers did not stop in time: killing them', { workers: started.size })
      kill('SIGKILL')
      process.exit(1)
    }, drainMs + 5_000).unref()
  }
  onStopSignals(stop, (signal) => {
    // A second signal: now, as a single gateway (its workers, signalled by their group, exit too).
    log(50, `second ${signal}: killing every worker`, { workers: started.size })
    kill('SIGKILL')
    process.exit(1)
  })

  log(30, 'starting workers', { workers: count })
  for (let i = 0; i < count; i++) fork(i)
  listen?.().then((started) => {
    listener = started
    if (stopping) started.close().catch(() => {})
  }, (err: Error) => {
    // The same as a single process that cannot listen: one line, and the whole gateway stops.
    log(50, 'the metrics listener cannot start', { err: { message: err.message } })
    stop('listen error')
    process.exitCode = 1
  })
}
