// Is a run representative? Every ratio is taken against the ceiling of its own round, and a busy
// machine makes that ceiling slow and the ratios look better than they are (issue 15: 84 µs of gateway
// CPU per ceiling request on a loaded day against 17 on a quiet one). So each round is checked twice:
// its ceiling (the single-process gateway's /health/live) against the machine's usual figure, and the
// CPU that other processes used during each of its measured runs (bench/rounds.ts). A round whose
// ceiling fails is left out of the table, so is a scenario's measure during which other processes were
// busy, and a run with no round left is not representative.
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { paths } from './paths.js'
import type { Measured } from './rounds.js'

/** A round whose ceiling is below this share of the usual one was measured on a busy machine. */
export const DISTURBED_BELOW = 0.7
/** So was a measure (and a round, if it was its ceiling's) during which other processes used more than this % of a core. */
export const OTHERS_ABOVE = 25
/** Runs of the history the usual figure is taken from (the newest). */
const HISTORY_RUNS = 20
const historyFile = (): string => join(paths.results, 'history.jsonl')

/** What makes two runs' ceilings comparable: the machine and the way the load is made. */
export interface CeilingSetup {
  cpus: number
  cpuModel: string
  loadGenerator: string
  connections: number
  metrics: boolean
  profile: boolean
  /** BENCH_NODE_ARGS, when set: another setup, with its own usual ceiling. */
  nodeArgs?: string
}

export interface Usual {
  requestsPerSec: number
  /** Where the figure comes from, as the report says it. */
  from: string
}

/** One round's ceiling, absolute. */
export interface RoundCeiling {
  requestsPerSec: number
  gatewayCpuUsPerRequest: number
}

export interface CeilingCheck {
  usual: Usual
  threshold: number
  othersAbove: number
  /** Per round, the most CPU (% of one core) other processes and machines used during one of its measured runs. */
  othersCpu: number[]
  /**
   * Per round, whether its ceiling was at least `threshold` × the usual one, and measured while other
   * processes used at most `othersAbove` (on every gateway).
   */
  representative: boolean[]
  /** Per scenario and round, whether the measure counts: its round representative, its own runs quiet on every gateway. */
  kept: Record<string, boolean[]>
  /** Whether any round was representative. */
  runRepresentative: boolean
}

/** Each round's ceiling, absolute. */
export function ceilingsOf (rounds: Measured[][]): RoundCeiling[] {
  return rounds.map((round) => {
    const c = round.find((m) => m.scenario === 'ceiling')
    return { requestsPerSec: Math.round(c?.result.requestsPerSec ?? 0), gatewayCpuUsPerRequest: c?.gatewayUsPerRequest ?? 0 }
  })
}

const keyOf = (setup: CeilingSetup): string => JSON.stringify(setup)

/** The newest HISTORY_RUNS recorded runs of the same setup: each one's best round's ceiling. */
function recordedBest (setup: CeilingSetup): number[] {
  let text = ''
  try {
    text = readFileSync(historyFile(), 'utf8')
  } catch {
    return []
  }
  const key = keyOf(setup)
  return text.split('\n').filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { key: string, ceilings: number[] })
    .filter((r) => r.key === key)
    .slice(-HISTORY_RUNS)
    .map((r) => Math.max(...r.ceilings))
}

/**
 * The usual ceiling: BENCH_USUAL_CEILING when set; otherwise the best of this run's rounds and of the
 * newest recorded runs of the same setup (bench/results/history.jsonl, which every run appends to).
 */
export function usualCeiling (env: NodeJS.ProcessEnv, setup: CeilingSetup, thisRun: RoundCeiling[]): Usual {
  const given = Number(env.BENCH_USUAL_CEILING)
  if (env.BENCH_USUAL_CEILING !== undefined && env.BENCH_USUAL_CEILING !== '') {
    if (!(given > 0)) throw new Error('BENCH_USUAL_CEILING must be a number of requests per second')
    return { requestsPerSec: given, from: 'BENCH_USUAL_CEILING' }
  }
  const recorded = recordedBest(setup)
  const best = Math.max(0, ...thisRun.map((c) => c.requestsPerSec))
  const usual = Math.max(best, ...recorded)
  const from = recorded.length === 0
    ? 'this run\'s best round: no earlier run of this setup in bench/results/history.jsonl'
    : `the best of this run and of the ${recorded.length} latest recorded run(s) of this setup in bench/results/history.jsonl`
  return { requestsPerSec: usual, from }
}

/** Judges every round and measure of `measured` (`[gateway][round][scenario]`, the single-process gateway first). */
export function checkRounds (measured: Measured[][][], usual: Usual): CeilingCheck {
  const rounds = measured[0] ?? []
  const others = (round: number, scenario: string): number => Math.max(0, ...measured.map((gateway) => {
    const m = gateway[round]?.find((x) => x.scenario === scenario)
    return m === undefined ? 0 : m.othersCpu + m.stealCpu
  }))
  const quiet = (round: number, scenario: string): boolean => others(round, scenario) <= OTHERS_ABOVE
  const representative = ceilingsOf(rounds).map((c, i) => c.requestsPerSec >= DISTURBED_BELOW * usual.requestsPerSec && quiet(i, 'ceiling'))
  const kept = Object.fromEntries((rounds[0] ?? []).map(({ scenario }) => [scenario, rounds.map((_, i) => representative[i] === true && quiet(i, scenario))]))
  return {
    usual,
    threshold: DISTURBED_BELOW,
    othersAbove: OTHERS_ABOVE,
    othersCpu: rounds.map((round, i) => Math.max(0, ...round.map((m) => others(i, m.scenario)))),
    representative,
    kept,
    runRepresentative: representative.some((r) => r)
  }
}

/** Appends this run's ceilings to the history (bench/results/, which git ignores: it is this machine's). */
export function recordCeilings (setup: CeilingSetup, rounds: RoundCeiling[]): void {
  mkdirSync(paths.results, { recursive: true })
  const line = { date: new Date().toISOString(), key: keyOf(setup), ceilings: rounds.map((c) => Math.round(c.requestsPerSec)) }
  appendFileSync(historyFile(), JSON.stringify(line) + '\n')
}
