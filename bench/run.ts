// `npm run bench`: measures the built gateway against its own ceiling on this machine.
// Starts its own redis-server, the WeChat simulator (own process) and the gateway (own process,
// production setup: Redis store, revocation checks on), then runs each scenario with the load generator
// for a fixed time after a warm-up, and measures Redis memory per session. With BENCH_WORKERS, a gateway
// with that many workers runs too (with BENCH_METRICS=compare, one with metrics), each scenario measured
// on both in turn. BENCHMARKS.md says more.
import { ceilingsOf, checkRounds, recordCeilings, usualCeiling } from './ceiling.js'
import { benchConfig, ceilingSetupOf, gatewaysOf, type BenchConfig } from './config.js'
import { createLoadGenerator } from './loadgen.js'
import { memoryPerSession } from './memory.js'
import { startStack, type Stack } from './processes.js'
import { reportText, resultsOf, writeResults } from './report.js'
import { runRounds, type Target } from './rounds.js'
import { prepareScenarios, scenarioAt } from './scenarios.js'

/** The gateways to measure, the single-process one first, each with the same scenarios at its own URL. */
async function targetsOf (stack: Stack, config: BenchConfig): Promise<Target[]> {
  const { gateways, redis, simulator } = stack
  const base = gateways[0]?.base as string
  const scenarios = (await prepareScenarios(base, config.sessions))
    .filter((s) => s.name === 'ceiling' || config.only.length === 0 || config.only.includes(s.name))
  return gateways.map((g) => ({
    label: g.label,
    scenarios: scenarios.map((s) => scenarioAt(s, base, g.base)),
    procs: { gateway: g.proc, redis, simulator },
    restart: g.restart
  }))
}

async function main (config: BenchConfig): Promise<void> {
  const loadgen = createLoadGenerator(config.loadgen, config.connections)
  let stack: Stack | undefined
  try {
    stack = await startStack({ gateways: gatewaysOf(config).specs, profile: config.profile, nodeArgs: config.nodeArgs, replica: config.wait === 'compare' })
    const measured = await runRounds(loadgen, await targetsOf(stack, config), config)
    // Ends the CPU profile, if any, before Redis is flushed for the memory run.
    for (const g of stack.gateways) await g.proc.stop()
    const memory = []
    // One session per user, then users with 5 and with the default session limit (10) of them;
    // BENCH_MEMORY_SESSIONS=0 skips it.
    if (config.memorySessions > 0) process.stderr.write(`measuring Redis memory with ${config.memorySessions} sessions\n`)
    for (const perUser of config.memorySessions > 0 ? [1, 5, 10] : []) memory.push(await memoryPerSession(stack.redisUrl, config.memorySessions, perUser))

    const ceilings = ceilingsOf(measured[0] ?? [])
    const setup = ceilingSetupOf(config)
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
