// `npm run bench`: measures the built gateway against its own ceiling on this machine.
// Starts its own redis-server, the WeChat simulator (own process) and the gateway (own process,
// production setup: Redis store, revocation checks on), then runs each scenario with the load generator
// for a fixed time after a warm-up, and measures Redis memory per session. BENCHMARKS.md says more.
import { createLoadGenerator, loadGeneratorName } from './loadgen.js'
import { memoryPerSession } from './memory.js'
import { startStack, type Stack } from './processes.js'
import { reportText, resultsOf, writeResults } from './report.js'
import { runRounds } from './rounds.js'
import { prepareScenarios } from './scenarios.js'

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
    profile: env.BENCH_PROFILE === '1'
  }
}

type BenchConfig = ReturnType<typeof benchConfig>

async function main (config: BenchConfig): Promise<void> {
  const loadgen = createLoadGenerator(config.loadgen, config.connections)
  let stack: Stack | undefined
  try {
    stack = await startStack(config.profile)
    const { gateway } = stack.procs
    const scenarios = (await prepareScenarios(stack.base, config.sessions))
      .filter((s) => s.name === 'ceiling' || config.only.length === 0 || config.only.includes(s.name))
    const rounds = await runRounds(loadgen, scenarios, stack.procs, config)
    await gateway.stop() // ends the CPU profile, if any, before Redis is flushed for the memory run
    process.stderr.write(`measuring Redis memory with ${config.memorySessions} sessions\n`)
    const memory = []
    // One session per user, then users with 5 and with the default session limit (10) of them.
    for (const perUser of [1, 5, 10]) memory.push(await memoryPerSession(stack.redisUrl, config.memorySessions, perUser))

    const results = resultsOf(config, rounds, memory)
    process.stdout.write(reportText(results))
    process.stderr.write(`results written to ${writeResults(results)}\n`)
    const failed = results.scenarios.filter((r) => r.non2xx > 0 || r.errors > 0 || r.timeouts > 0)
    if (failed.length > 0) {
      process.stderr.write(`\nBENCHMARK FAILED: errors in ${failed.map((r) => r.scenario).join(', ')}\n${gateway.output()}\n`)
      process.exitCode = 1
    }
  } finally {
    await stack?.stop()
    loadgen.close()
  }
}

await main(benchConfig(process.env))
