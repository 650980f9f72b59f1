// The report: per scenario, the round with the median ratio to the ceiling, printed as a markdown table
// on stdout and written with every round as JSON to bench/results/latest.json.
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import type { LoadGeneratorName } from './loadgen.js'
import { MEMORY_ROTATIONS, type MemoryResult } from './memory.js'
import { paths } from './paths.js'
import { RAISED_LIMIT } from './processes.js'
import type { Measured, RoundsSetup } from './rounds.js'

interface Row {
  scenario: string
  requestsPerSec: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  timeouts: number
  ratio: number
  /** % of one core used during the measured run, per process. */
  cpu: Record<string, number>
  /** The gateway's CPU time per request (µs): its cost, steadier than req/s on a shared machine. */
  gatewayCpuUsPerRequest: number
  redisCpuUsPerRequest: number
  /** Lowest and highest ratio over the rounds. */
  ratioRange: [number, number]
}

/** One round's rows, each ratio against the ceiling of its own round (measured a minute apart at most). */
function rowsOf (round: Measured[]): Row[] {
  const ceiling = round.find((m) => m.scenario === 'ceiling')?.result.requestsPerSec ?? 0
  return round.map(({ scenario, result: r, cpu, gatewayUsPerRequest, redisUsPerRequest }) => {
    const ratio = Number((r.requestsPerSec / ceiling).toFixed(2))
    return {
      scenario,
      requestsPerSec: Math.round(r.requestsPerSec),
      p50: r.p50,
      p99: r.p99,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      ratio,
      cpu,
      gatewayCpuUsPerRequest: gatewayUsPerRequest,
      redisCpuUsPerRequest: redisUsPerRequest,
      ratioRange: [ratio, ratio]
    }
  })
}

/** Per scenario, the round with the median ratio (errors summed over all rounds, so none hides). */
function medianRows (rounds: Row[][]): Row[] {
  return (rounds[0] ?? []).map(({ scenario }) => {
    const runs = rounds.map((r) => r.find((x) => x.scenario === scenario) as Row)
      .sort((a, b) => a.ratio - b.ratio || a.requestsPerSec - b.requestsPerSec)
    const median = runs[Math.floor(runs.length / 2)] as Row
    const sum = (k: 'non2xx' | 'errors' | 'timeouts'): number => runs.reduce((n, r) => n + r[k], 0)
    return {
      ...median,
      non2xx: sum('non2xx'),
      errors: sum('errors'),
      timeouts: sum('timeouts'),
      ratioRange: [(runs[0] as Row).ratio, (runs.at(-1) as Row).ratio]
    }
  })
}

/** What a run found, as latest.json holds it. */
export function resultsOf (setup: RoundsSetup & { loadgen: LoadGeneratorName }, measured: Measured[][], memory: MemoryResult[]) {
  const perRound = measured.map(rowsOf)
  return {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    loadGenerator: setup.loadgen,
    connections: setup.connections,
    warmupSec: setup.warmupSec,
    durationSec: setup.durationSec,
    rounds: setup.rounds,
    scenarios: medianRows(perRound),
    perRound,
    memory
  }
}

type Results = ReturnType<typeof resultsOf>

function tableRow (r: Row, rounds: number): string {
  const range = rounds > 1 && r.scenario !== 'ceiling' ? ` (${r.ratioRange[0].toFixed(2)}–${r.ratioRange[1].toFixed(2)})` : ''
  return `| ${r.scenario} | ${r.requestsPerSec} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors + r.timeouts} | ${r.ratio.toFixed(2)}${range} | ` +
    `${r.gatewayCpuUsPerRequest} / ${r.redisCpuUsPerRequest} | ${r.cpu.gateway} / ${r.cpu.redis} / ${r.cpu.simulator} / ${r.cpu.loadgen} |`
}

/** The markdown BENCHMARKS.md quotes: the machine, the setup, the table and the memory line. */
export function reportText (results: Results): string {
  const { machine, memory } = results
  return [
    `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}; load generator (${results.loadGenerator}) on the same machine.`,
    `Setup: gateway NODE_ENV=production, Redis store, LOG_LEVEL=warn, rate limits raised to ${RAISED_LIMIT}/min for the run; ${results.connections} connections, ${results.warmupSec}s warm-up, ${results.durationSec}s measured; ` +
      `${results.rounds} round(s), each ratio against its own round's ceiling, the median round shown (range of the ratio in brackets).`,
    '',
    '| scenario | req/s | p50 ms | p99 ms | non-2xx | errors | × ceiling | CPU µs/req gateway / redis | CPU % gateway / redis / simulator / load generator |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...results.scenarios.map((r) => tableRow(r, results.rounds)),
    '',
    ...memory.map((m) =>
      `Redis memory (${m.sessions} sessions, ${m.perUser} per user, device recorded; used_memory delta / count): ${m.bytesPerSession} bytes and ${m.keysPerSession.toFixed(2)} keys per new session; ` +
      `${m.bytesAfterOneRotation} bytes after one refresh; ${m.bytesAfterManyRotations} bytes after ${MEMORY_ROTATIONS} refreshes; ${m.bytesAfterStepUp} bytes once stepped up too.`)
  ].join('\n') + '\n'
}

/** Writes bench/results/latest.json; returns its path. */
export function writeResults (results: Results): string {
  mkdirSync(paths.results, { recursive: true })
  const file = join(paths.results, 'latest.json')
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n')
  return file
}
