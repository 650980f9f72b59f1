// The run's knobs, read from the environment (BENCHMARKS.md lists them), and the gateways they ask
// for: shared by `npm run bench` (bench/run.ts) and `npm run bench:peers` (bench/peers.ts).
import { existsSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { join, resolve } from 'node:path'
import type { CeilingSetup } from './ceiling.js'
import { loadGeneratorName } from './loadgen.js'
import { paths } from './paths.js'
import type { GatewaySpec } from './processes.js'
import type { Compared } from './report.js'

/** BENCH_WORKERS: a number of workers, or `auto` for this machine's cores; unset (or 1) for none. */
function workersOf (value: string | undefined): number | null {
  if (value === undefined || value === '') return null
  const count = value === 'auto' ? availableParallelism() : Number(value)
  if (!Number.isInteger(count) || count < 1 || count > 99) throw new Error('BENCH_WORKERS must be auto or a number of workers (2 to 99)')
  if (count === 1) process.stderr.write(`BENCH_WORKERS=${value} is one process: measuring the single-process gateway only\n`)
  return count > 1 ? count : null
}

export function benchConfig (env: NodeJS.ProcessEnv) {
  const connections = Number(env.BENCH_CONNECTIONS ?? 50)
  const sessions = Number(env.BENCH_SESSIONS ?? 1000)
  if (sessions < connections) throw new Error('BENCH_SESSIONS must be at least BENCH_CONNECTIONS: each refresh connection holds a session')
  return {
    durationSec: Number(env.BENCH_DURATION ?? 10),
    warmupSec: Number(env.BENCH_WARMUP ?? 3),
    connections,
    sessions,
    memorySessions: Number(env.BENCH_MEMORY_SESSIONS ?? 100_000),
    // Every scenario, the ceiling included, runs once per round; each ratio is taken against the ceiling
    // of its own round, and the round with the median ratio is reported.
    rounds: Math.max(1, Math.floor(Number(env.BENCH_ROUNDS ?? 3))),
    // BENCH_RESTART=1: every gateway a fresh process at each round after the first, so that the range
    // over the rounds is the spread between processes (BENCHMARKS.md, one gateway process in three starts slow).
    restart: env.BENCH_RESTART === '1',
    loadgen: loadGeneratorName(env.BENCH_LOADGEN),
    // BENCH_ONLY=authenticated,refresh runs only those scenarios (the ceiling always runs).
    only: (env.BENCH_ONLY ?? '').split(',').filter((s) => s !== ''),
    // BENCH_PROFILE=1 writes a V8 CPU profile of the gateway to bench/results/ (see bench/profile-top.ts).
    profile: env.BENCH_PROFILE === '1',
    // BENCH_METRICS=1 runs every gateway with METRICS_PORT: Prometheus metrics counted on every request;
    // BENCH_METRICS=compare also measures the gateway with metrics, in turn with the one without.
    metrics: metricsOf(env.BENCH_METRICS),
    // BENCH_WORKERS=2 (or auto) also measures a gateway of that many workers (WORKERS), in turn with the other.
    workers: workersOf(env.BENCH_WORKERS),
    // BENCH_WAIT=compare gives Redis a replica and also measures a gateway with REDIS_WAIT_REPLICAS=1
    // (logins and rotations wait for it), in turn with the one without.
    wait: compareOf('BENCH_WAIT', env.BENCH_WAIT),
    // BENCH_ACCESS_CHECK=compare also measures a gateway with ACCESS_CHECK=strict (one HMGET per
    // authenticated request), in turn with the default (tracked); =strict or =tracked runs every
    // gateway so (as bench/revocation-delay.ts reads it).
    access: accessOf(env.BENCH_ACCESS_CHECK),
    // BENCH_BASELINE=DIR also measures the gateway built in DIR (another commit's worktree, `npm run
    // build` done there: its dist/server.js), in turn with this one, in the same run.
    baseline: baselineOf(env.BENCH_BASELINE),
    // BENCH_FLOOR=1 (npm run bench) also measures the floor (bench/floor/server.ts: only the I/O and crypto of each
    // scenario's request, in Node and Fastify), in turn with the gateway, each against its own ceiling.
    floor: env.BENCH_FLOOR === '1',
    // BENCH_NODE_ARGS='--single-threaded-gc' runs every gateway process with these options of Node's
    // (BENCHMARKS.md, "One gateway process in three starts slow").
    nodeArgs: (env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
  }
}

function baselineOf (value: string | undefined): string | null {
  if (value === undefined || value === '') return null
  const dir = resolve(value)
  if (!existsSync(join(dir, 'dist', 'server.js'))) throw new Error(`BENCH_BASELINE: no ${join(dir, 'dist', 'server.js')} (run npm run build there)`)
  return dir
}

function accessOf (value: string | undefined): 'off' | 'compare' | 'strict' | 'tracked' {
  if (value === 'strict' || value === 'tracked') return value
  return compareOf('BENCH_ACCESS_CHECK (or strict, tracked)', value)
}

function compareOf (name: string, value: string | undefined): 'off' | 'compare' {
  if (value === undefined || value === '' || value === '0') return 'off'
  if (value === 'compare') return value
  throw new Error(`${name} must be compare`)
}

function metricsOf (value: string | undefined): 'off' | 'on' | 'compare' {
  if (value === undefined || value === '' || value === '0') return 'off'
  if (value === '1' || value === 'compare') return value === '1' ? 'on' : 'compare'
  throw new Error('BENCH_METRICS must be 1 or compare')
}

/** The gateways to start, the one every other is compared with first; and what the second one is. */
export function gatewaysOf (config: { metrics: 'off' | 'on' | 'compare', workers: number | null, wait?: 'off' | 'compare', access?: 'off' | 'compare' | 'strict' | 'tracked', baseline?: string | null, floor?: boolean }): { specs: GatewaySpec[], compared: Compared | null } {
  const { metrics, workers, wait = 'off', access = 'off', baseline = null, floor = false } = config
  if ([metrics === 'compare', workers !== null, wait === 'compare', access === 'compare', baseline !== null, floor].filter(Boolean).length > 1) {
    throw new Error('BENCH_METRICS=compare, BENCH_WORKERS, BENCH_WAIT=compare, BENCH_ACCESS_CHECK=compare, BENCH_BASELINE and BENCH_FLOOR: one comparison at a time')
  }
  const first = { label: 'gateway', workers: 1, metrics: metrics === 'on', ...(access === 'strict' || access === 'tracked' ? { env: { ACCESS_CHECK: access } } : {}) }
  if (baseline !== null) {
    const compared = { label: 'baseline', baseLabel: 'this build', about: `the gateway built in ${baseline} (its dist/server.js, the same setup)` }
    return { specs: [first, { ...first, label: 'baseline', dist: join(baseline, 'dist') }], compared }
  }
  if (floor) {
    const compared = { label: 'floor', baseLabel: 'gateway', about: 'the floor (bench/floor/server.ts: one Fastify process doing only the I/O and crypto of each request, none of the gateway\'s logic)' }
    return { specs: [first, { label: 'floor', workers: 1, metrics: false, dist: paths.floor }], compared }
  }
  if (access === 'compare') {
    const compared = { label: 'strict', baseLabel: 'tracked', about: 'ACCESS_CHECK=strict (the same gateway; one HMGET per authenticated request instead of the read copy)' }
    return { specs: [first, { ...first, label: 'strict', env: { ACCESS_CHECK: 'strict' } }], compared }
  }
  if (wait === 'compare') {
    const compared = { label: 'durable', baseLabel: 'no wait', about: 'REDIS_WAIT_REPLICAS=1 (the same gateway; logins and rotations answered once the replica has them: WAIT 1, at most REDIS_WAIT_TIMEOUT_MS=100)' }
    return { specs: [first, { ...first, label: 'durable', env: { REDIS_WAIT_REPLICAS: '1' } }], compared }
  }
  if (workers !== null) {
    const compared = { label: `${workers} workers`, baseLabel: '1 process', about: `WORKERS=${workers} (a primary and ${workers} workers on one port; gateway CPU summed over the primary and its workers)` }
    return { specs: [first, { label: compared.label, workers, metrics: metrics === 'on' }], compared }
  }
  if (metrics === 'compare') {
    const compared = { label: 'metrics', baseLabel: 'no metrics', about: 'metrics (the same gateway with METRICS_PORT: Prometheus metrics counted on every request)' }
    return { specs: [first, { label: 'metrics', workers: 1, metrics: true }], compared }
  }
  return { specs: [first], compared: null }
}

export type BenchConfig = ReturnType<typeof benchConfig>

/** What makes two runs' ceilings comparable (bench/results/history.jsonl): this machine and the run's setup. */
export function ceilingSetupOf (config: BenchConfig): CeilingSetup {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loadGenerator: config.loadgen, connections: config.connections, metrics: config.metrics === 'on', profile: config.profile, ...(config.nodeArgs.length > 0 ? { nodeArgs: config.nodeArgs.join(' ') } : {}) }
}
