// The measured runs: every scenario, the ceiling included, runs once per round, after a warm-up, while
// the CPU time of each process (with its descendants: a primary's workers) is read from /proc. With
// several gateways, each scenario runs on each gateway in turn within a round, so that they see the
// same machine.
import type { LoadGenerator, LoadResult } from './loadgen.js'
import { machineCpuSeconds, treeCpuSeconds } from './cpu.js'
import type { Proc } from './processes.js'
import type { Scenario } from './scenarios.js'

export interface RoundsSetup {
  rounds: number
  /** Every gateway a fresh process at the start of each round after the first (BENCH_RESTART=1). */
  restart?: boolean
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
  /**
   * % of one core that processes other than the run's used meanwhile (the machine's busy time less
   * the gateway's, Redis', the simulator's, the load generator's and this runner's), and that the
   * hypervisor gave to other machines (steal): how busy the machine was.
   */
  othersCpu: number
  stealCpu: number
}

/** A gateway to measure: its scenarios (in the same order for every target) and the processes to read. */
export interface Target {
  label: string
  scenarios: Scenario[]
  procs: { gateway: Proc, redis: Proc, simulator: Proc }
  /** Starts its gateway afresh; the new process is the one measured from then on. */
  restart?: () => Promise<Proc>
}

async function measure (loadgen: LoadGenerator, s: Scenario, procs: Record<string, Proc>, setup: RoundsSetup): Promise<Measured> {
  await s.prepare?.()
  await loadgen.run(s, setup.warmupSec)
  const before = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, treeCpuSeconds(p.child.pid)]))
  const [machineBefore, selfBefore] = [machineCpuSeconds(), process.cpuUsage()]
  const started = Date.now()
  const result = await loadgen.run(s, setup.durationSec)
  const wall = (Date.now() - started) / 1000
  const [machine, self] = [machineCpuSeconds(), process.cpuUsage(selfBefore)]
  const used = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, treeCpuSeconds(p.child.pid) - (before[k] ?? 0)]))
  const cpu: Record<string, number> = {}
  for (const k of Object.keys(procs)) cpu[k] = Math.round(100 * (used[k] ?? 0) / wall)
  cpu.loadgen = Math.round(100 * result.cpuSeconds / wall)
  const usPerRequest = (name: string): number => Math.round((used[name] ?? 0) * 1e6 / Math.max(1, result.total))
  // autocannon runs in this process: its time is this runner's.
  const ours = Object.values(used).reduce((a, b) => a + b, 0) + (self.user + self.system) / 1e6 + (loadgen.name === 'autocannon' ? 0 : result.cpuSeconds)
  return {
    scenario: s.name,
    result,
    cpu,
    gatewayUsPerRequest: usPerRequest('gateway'),
    redisUsPerRequest: usPerRequest('redis'),
    othersCpu: Math.max(0, Math.round(100 * (machine.busy - machineBefore.busy - ours) / wall)),
    stealCpu: Math.round(100 * (machine.steal - machineBefore.steal) / wall)
  }
}

/**
 * Each target's measures by round, in the order of its scenarios: `[target][round][scenario]`. In each
 * round, a scenario runs on every target before the next scenario starts, in an order that turns by one
 * each round (A B C, then B C A, then C A B): none always runs first, on the freshest machine, or last,
 * after the others' logins filled the shared Redis.
 */
export async function runRounds (loadgen: LoadGenerator, targets: Target[], setup: RoundsSetup): Promise<Measured[][][]> {
  const measured: Measured[][][] = targets.map(() => [])
  const count = targets[0]?.scenarios.length ?? 0
  for (let round = 1; round <= setup.rounds; round++) {
    if (setup.restart === true && round > 1) {
      for (const target of targets) if (target.restart !== undefined) target.procs.gateway = await target.restart()
    }
    const thisRound: Measured[][] = targets.map(() => [])
    for (let i = 0; i < count; i++) {
      for (let k = 0; k < targets.length; k++) {
        const t = (k + round - 1) % targets.length
        const { label, scenarios, procs } = targets[t] as Target
        const s = scenarios[i] as Scenario
        const on = targets.length > 1 ? ` on ${label}` : ''
        process.stderr.write(`round ${round}/${setup.rounds}: ${s.name}${on} (${setup.warmupSec}s warm-up, ${setup.durationSec}s measured, ${setup.connections} connections)\n`)
        thisRound[t]?.push(await measure(loadgen, s, procs, setup))
      }
    }
    thisRound.forEach((m, t) => measured[t]?.push(m))
  }
  return measured
}
