// `npm run bench`: measures the built gateway against its own ceiling on this machine.
// Starts its own redis-server, the WeChat simulator (own process) and the gateway (own process,
// production setup: Redis store, revocation checks on), then runs each scenario with the load generator
// for a fixed time after a warm-up, and measures Redis memory per session. With BENCH_WORKERS, a gateway
// with that many workers runs too (with BENCH_METRICS=compare, one with metrics), each scenario measured
// on both in turn. BENCHMARKS.md says more.
import { availableParallelism, cpus } from 'node:os'
import { ceilingsOf, checkRounds, recordCeilings, usualCeiling } from './ceiling.js'
import { createLoadGenerator, loadGeneratorName } from './loadgen.js'
import { memoryPerSession } from './memory.js'
import { startStack, type GatewaySpec, type Stack } from './processes.js'
import { reportText, resultsOf, writeResults, type Compared } from './report.js'
import { runRounds, type Target } from './rounds.js'
import { prepareScenarios, scenarioAt } from './scenarios.js'

/** BENCH_WORKERS: a number of workers, or `auto` for this machine's cores; unset (or 1) for none. */
function workersOf (value: string | undefined): number | null {
  if (value === undefined || value === '') return null
  const count = value === 'auto' ? availableParallelism() : Number(value)
  if (!Number.isInteger(count) || count < 1 || count > 99) throw new Error('BENCH_WORKERS must be auto or a number of workers (2 to 99)')
  if (count === 1) process.stderr.write(`BENCH_WORKERS=${value} is one process: measuring the single-process gateway only\n`)
  return count > 1 ? count : null
}

function benchConfig (env: NodeJS.ProcessEnv) {
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
    loadgen: loadGeneratorName(env.BENCH_LOADGEN),
    // BENCH_ONLY=authenticated,refresh runs only those scenarios (the ceiling always runs).
    only: (env.BENCH_ONLY ?? '').split(',').filter((s) => s !== ''),
    // BENCH_PROFILE=1 writes a V8 CPU profile of the gateway to bench/results/ (see bench/profile-top.ts).
    profile: env.BENCH_PROFILE === '1',
    // BENCH_METRICS=1 runs every gateway with METRICS_PORT: Prometheus metrics counted on every request;
    // BENCH_METRICS=compare also measures the gateway with metrics, in turn with the one without.
    metrics: metricsOf(env.BENCH_METRICS),
    // BENCH_WORKERS=2 (or auto) also measures a gateway of that many workers (WORKERS), in turn with the other.
    workers: workersOf(env.BENCH_WORKERS)
  }
}

function metricsOf (value: string | undefined): 'off' | 'on' | 'compare' {
  if (value === undefined || value === '' || value === '0') return 'off'
  if (value === '1' || value === 'compare') return value === '1' ? 'on' : 'compare'
  throw new Error('BENCH_METRICS must be 1 or compare')
}

/** The gateways to start, the one every other is compared with first; and what the second one is. */
function gatewaysOf (config: { metrics: 'off' | 'on' | 'compare', workers: number | null }): { specs: GatewaySpec[], compared: Compared | null } {
  const { metrics, workers } = config
  if (metrics === 'compare' && workers !== null) throw new Error('BENCH_METRICS=compare and BENCH_WORKERS: one comparison at a time')
  const first = { label: 'gateway', workers: 1, metrics: metrics === 'on' }
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

type BenchConfig = ReturnType<typeof benchConfig>

/** The gateways to measure, the single-process one first, each with the same scenarios at its own URL. */
async function targetsOf (stack: Stack, config: BenchConfig): Promise<Target[]> {
  const { gateways, redis, simulator } = stack
  const base = gateways[0]?.base as string
  const scenarios = (await prepareScenarios(base, config.sessions))
    .filter((s) => s.name === 'ceiling' || config.only.length === 0 || config.only.includes(s.name))
  return gateways.map((g) => ({
    label: g.label,
    scenarios: scenarios.map((s) => scenarioAt(s, base, g.base)),
    procs: { gateway: g.proc, redis, simulator }
  }))
}

async function main (config: BenchConfig): Promise<void> {
  const loadgen = createLoadGenerator(config.loadgen, config.connections)
  let stack: Stack | undefined
  try {
    stack = await startStack({ gateways: gatewaysOf(config).specs, profile: config.profile })
    const measured = await runRounds(loadgen, await targetsOf(stack, config), config)
    // Ends the CPU profile, if any, before Redis is flushed for the memory run.
    for (const g of stack.gateways) await g.proc.stop()
    process.stderr.write(`measuring Redis memory with ${config.memorySessions} sessions\n`)
    const memory = []
    // One session per user, then users with 5 and with the default session limit (10) of them.
    for (const perUser of [1, 5, 10]) memory.push(await memoryPerSession(stack.redisUrl, config.memorySessions, perUser))

    const ceilings = ceilingsOf(measured[0] ?? [])
    const setup = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loadGenerator: config.loadgen, connections: config.connections, metrics: config.metrics === 'on', profile: config.profile }
    const check = checkRounds(measured, usualCeiling(process.env, setup, ceilings))
    recordCeilings(setup, ceilings)
    const results = resultsOf({ ...config, metrics: config.metrics === 'on', compared: gatewaysOf(config).compared }, measured, check, memory)
    process.stdout.write(reportText(results))
    process.stderr.write(`results written to ${writeResults(results)}\n`)
    const failed = [...results.scenarios.map((r) => ({ ...r, on: '' })), ...(results.compared?.scenarios ?? []).map((r) => ({ ...r, on: ` (${results.compared?.label ?? ''})` }))]
      .filter((r) => r.non2xx > 0 || r.errors > 0 || r.timeouts > 0)
    if (failed.length > 0) {
      const outputs = stack.gateways.map((g) => `--- ${g.label}:\n${g.proc.output()}`).join('\n')
      process.stderr.write(`\nBENCHMARK FAILED: errors in ${failed.map((r) => r.scenario + r.on).join(', ')}\n${outputs}\n`)
      process.exitCode = 1
    }
  } finally {
    await stack?.stop()
    loadgen.close()
  }
}

await main(benchConfig(process.env))
