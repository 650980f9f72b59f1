// The measured runs: every scenario, the ceiling included, runs once per round, after a warm-up, while
// the CPU time of each process is read from /proc.
import type { LoadGenerator, LoadResult } from './loadgen.js'
import { cpuSeconds, type Proc } from './processes.js'
import type { Scenario } from './scenarios.js'

export interface RoundsSetup {
  rounds: number
  warmupSec: number
  durationSec: number
  connections: number
}

/** One scenario's measured run in one round. */
export interface Measured {
  scenario: string
  result: LoadResult
  /** % of one core used during the measured run, per process and for the load generator. */
  cpu: Record<string, number>
  gatewayUsPerRequest: number
  redisUsPerRequest: number
}

async function measure (loadgen: LoadGenerator, s: Scenario, procs: Record<string, Proc>, setup: RoundsSetup): Promise<Measured> {
  await loadgen.run(s, setup.warmupSec)
  const before = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, cpuSeconds(p.child.pid)]))
  const started = Date.now()
  const result = await loadgen.run(s, setup.durationSec)
  const wall = (Date.now() - started) / 1000
  const cpu: Record<string, number> = {}
  for (const [k, p] of Object.entries(procs)) cpu[k] = Math.round(100 * (cpuSeconds(p.child.pid) - (before[k] ?? 0)) / wall)
  cpu.loadgen = Math.round(100 * result.cpuSeconds / wall)
  const usPerRequest = (name: string): number =>
    Math.round((cpuSeconds(procs[name]?.child.pid) - (before[name] ?? 0)) * 1e6 / Math.max(1, result.total))
  return { scenario: s.name, result, cpu, gatewayUsPerRequest: usPerRequest('gateway'), redisUsPerRequest: usPerRequest('redis') }
}

/** Each round's measures, in the order of `scenarios`. */
export async function runRounds (loadgen: LoadGenerator, scenarios: Scenario[], procs: Record<string, Proc>, setup: RoundsSetup): Promise<Measured[][]> {
  const rounds: Measured[][] = []
  for (let round = 1; round <= setup.rounds; round++) {
    const measured: Measured[] = []
    for (const s of scenarios) {
      process.stderr.write(`round ${round}/${setup.rounds}: ${s.name} (${setup.warmupSec}s warm-up, ${setup.durationSec}s measured, ${setup.connections} connections)\n`)
      measured.push(await measure(loadgen, s, procs, setup))
    }
    rounds.push(measured)
  }
  return rounds
}
