// The report: per scenario, the round with the median ratio to the ceiling, printed as a markdown table
// on stdout and written with every round as JSON to bench/results/latest.json. Measures taken while
// the machine was busy are left out (bench/ceiling.ts). With a second gateway (workers, or metrics),
// the same for it, and the two side by side.
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import type { LoadGeneratorName } from './loadgen.js'
import { MEMORY_ROTATIONS, type MemoryResult } from './memory.js'
import { paths } from './paths.js'
import { RAISED_LIMIT } from './processes.js'
import type { Measured, RoundsSetup } from './rounds.js'
import { ceilingsOf, type CeilingCheck, type RoundCeiling } from './ceiling.js'

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
  /** % of one core other processes used during the run, and steal (bench/rounds.ts). */
  othersCpu: number
  stealCpu: number
  /** Lowest and highest ratio over the rounds kept. */
  ratioRange: [number, number]
  /** The rounds the median and the range are taken from: 0 when none was quiet (the ratio is then not comparable). */
  roundsKept: number
}

/** One round's rows, each ratio against the ceiling of its own round (measured a minute apart at most). */
function rowsOf (round: Measured[]): Row[] {
  const ceiling = round.find((m) => m.scenario === 'ceiling')?.result.requestsPerSec ?? 0
  return round.map(({ scenario, result: r, cpu, gatewayUsPerRequest, redisUsPerRequest, othersCpu, stealCpu }) => {
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
      othersCpu,
      stealCpu,
      ratioRange: [ratio, ratio],
      roundsKept: 1
    }
  })
}

type Kept = CeilingCheck['kept']
const keptRounds = (kept: Kept, scenario: string, count: number): number[] =>
  Array.from({ length: count }, (_, i) => i).filter((i) => kept[scenario]?.[i] === true)

/**
 * Per scenario, the round with the median ratio among the rounds `kept` keeps for it (all of them if
 * it keeps none); errors are summed over every round, so none hides.
 */
function medianRows (rounds: Row[][], kept: Kept): Row[] {
  return (rounds[0] ?? []).map(({ scenario }) => {
    const all = rounds.map((r) => r.find((x) => x.scenario === scenario) as Row)
    const indexes = keptRounds(kept, scenario, rounds.length)
    const runs = (indexes.length > 0 ? indexes.map((i) => all[i] as Row) : all).sort((a, b) => a.ratio - b.ratio || a.requestsPerSec - b.requestsPerSec)
    const median = runs[Math.floor(runs.length / 2)] as Row
    const sum = (k: 'non2xx' | 'errors' | 'timeouts'): number => all.reduce((n, r) => n + r[k], 0)
    return {
      ...median,
      non2xx: sum('non2xx'),
      errors: sum('errors'),
      timeouts: sum('timeouts'),
      ratioRange: [(runs[0] as Row).ratio, (runs.at(-1) as Row).ratio],
      roundsKept: indexes.length
    }
  })
}

/** Per scenario and kept round, the second gateway's req/s ÷ the first's in the same round. */
function gains (single: Row[][], multi: Row[][], kept: Kept): Array<{ scenario: string, perRound: number[] }> {
  return (single[0] ?? []).map(({ scenario }) => {
    const rps = (rows: Row[][], i: number): number => rows[i]?.find((x) => x.scenario === scenario)?.requestsPerSec ?? 0
    return { scenario, perRound: keptRounds(kept, scenario, single.length).map((i) => Number((rps(multi, i) / Math.max(1, rps(single, i))).toFixed(2))) }
  })
}

/** What the second gateway is, if any: its label, the first one's in the comparison, and a description. */
export interface Compared {
  label: string
  baseLabel: string
  about: string
}

export interface RunSetup extends RoundsSetup {
  loadgen: LoadGeneratorName
  /** Whether every gateway ran with metrics (BENCH_METRICS=1). */
  metrics: boolean
  compared: Compared | null
}

/**
 * What a run found, as latest.json holds it: `measured` is `[gateway][round][scenario]`, the
 * single-process gateway first, then the one it is compared with (`compared`), if any.
 */
export function resultsOf (setup: RunSetup, measured: Measured[][][], check: CeilingCheck, memory: MemoryResult[]) {
  const [first = [], second] = measured.map((rounds) => rounds.map(rowsOf))
  return {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    loadGenerator: setup.loadgen,
    connections: setup.connections,
    warmupSec: setup.warmupSec,
    durationSec: setup.durationSec,
    rounds: setup.rounds,
    restart: setup.restart === true,
    metrics: setup.metrics,
    ceiling: { perRound: ceilingsOf(measured[0] ?? []), ...check },
    scenarios: medianRows(first, check.kept),
    perRound: first,
    compared: second === undefined || setup.compared === null
      ? null
      : { ...setup.compared, ceilingPerRound: ceilingsOf(measured[1] ?? []), scenarios: medianRows(second, check.kept), perRound: second, gainPerRound: gains(first, second, check.kept) },
    memory
  }
}
type Results = ReturnType<typeof resultsOf>

const TABLE_HEAD = [
  '| scenario | req/s | p50 ms | p99 ms | non-2xx | errors | × ceiling | CPU µs/req gateway / redis | CPU % gateway / redis / simulator / load generator |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |'
]

const n = (x: number): string => x.toLocaleString('en-US')
const range = ([low, high]: [number, number]): string => ` (${low.toFixed(2)}–${high.toFixed(2)})`

/** A table row: the ratio with its range over the rounds kept, or n/r when none was quiet. */
function tableRow (r: Row): string {
  const ratio = r.scenario === 'ceiling' ? r.ratio.toFixed(2) : r.roundsKept === 0 ? 'n/r' : r.ratio.toFixed(2) + (r.roundsKept > 1 ? range(r.ratioRange) : '')
  return `| ${r.scenario} | ${r.requestsPerSec} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors + r.timeouts} | ${ratio} | ` +
    `${r.gatewayCpuUsPerRequest} / ${r.redisCpuUsPerRequest} | ${r.cpu.gateway} / ${r.cpu.redis} / ${r.cpu.simulator} / ${r.cpu.loadgen} |`
}

const perRound = (ceilings: RoundCeiling[]): string =>
  ceilings.map((c, i) => `${n(c.requestsPerSec)} req/s at ${c.gatewayCpuUsPerRequest} µs${i === 0 ? ' of gateway CPU per request' : ''}`).join(', ')

/** The ceiling of every round, the usual figure, what else ran, and which rounds the table leaves out. */
function ceilingLines ({ ceiling }: Results): string[] {
  const floor = Math.round(ceiling.threshold * ceiling.usual.requestsPerSec)
  const lines = [
    `Ceiling (GET /health/live, single-process gateway) per round: ${perRound(ceiling.perRound)}. ` +
      `Usual on this machine: ${n(ceiling.usual.requestsPerSec)} req/s (${ceiling.usual.from}). ` +
      `Other processes (and other machines: steal) used at most ${ceiling.othersCpu.map((o) => `${o} %`).join(', ')} of a core during a measured run of each round. ` +
      `A round whose ceiling is below ${ceiling.threshold * 100} % of the usual (${n(floor)} req/s), or where other processes used more than ${ceiling.othersAbove} % of a core, was measured on a busy machine.`
  ]
  const left = ceiling.representative.flatMap((r, i) => r
    ? Object.entries(ceiling.kept).filter(([, kept]) => kept[i] !== true).map(([scenario]) => `${scenario} in round ${i + 1}`)
    : [`round ${i + 1}`])
  const none = Object.entries(ceiling.kept).filter(([scenario, kept]) => scenario !== 'ceiling' && !kept.some((k) => k)).map(([scenario]) => scenario)
  if (!ceiling.runRepresentative) {
    const hint = ceiling.usual.from === 'BENCH_USUAL_CEILING' ? 'or lower BENCH_USUAL_CEILING if this machine is slower' : 'or set BENCH_USUAL_CEILING'
    lines.push(`NOT REPRESENTATIVE: every round was measured on a busy machine, so the ratios are not shown (n/r). Run again when it is quiet (${hint}).`)
  } else if (left.length > 0) {
    lines.push(`Left out of the table (measured on a busy machine): ${left.join(', ')}.` +
      (none.length > 0 ? ` No quiet round of ${none.join(', ')}: ratio not shown (n/r).` : ''))
  }
  return lines
}

/** The second gateway: its table, and both gateways side by side. */
function comparedLines (results: Results): string[] {
  const { compared } = results
  if (compared === null) return []
  const { label, baseLabel } = compared
  const single = new Map(results.scenarios.map((r) => [r.scenario, r]))
  const gain = new Map(compared.gainPerRound.map((g) => [g.scenario, g]))
  return [
    '',
    `With ${compared.about}, against the same Redis, simulator and JWT secret: each scenario measured in turn with the first gateway's in every round, the order turning each round; ` +
      `ratios against its own ceiling, measured through it. Its ceiling per round: ${perRound(compared.ceilingPerRound)}.`,
    '',
    ...TABLE_HEAD,
    ...compared.scenarios.map(tableRow),
    '',
    `| scenario | req/s ${baseLabel} | req/s ${label} | ${label} ÷ ${baseLabel} (each kept round) | × ceiling ${baseLabel} / ${label} | gateway CPU µs/req ${baseLabel} / ${label} | gateway CPU % ${baseLabel} / ${label} |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...compared.scenarios.map((w) => {
      const s = single.get(w.scenario) as Row
      const rounds = gain.get(w.scenario)?.perRound ?? []
      const each = rounds.length > 1 ? ` (${rounds.map((g) => g.toFixed(2)).join(', ')})` : ''
      // The median of the rounds' gains (not the ratio of the two medians, which may come from different rounds).
      const gained = rounds.length === 0 ? 'n/r' : ([...rounds].sort((a, b) => a - b)[Math.floor(rounds.length / 2)] as number).toFixed(2) + each
      const ratios = s.roundsKept === 0 ? 'n/r' : `${s.ratio.toFixed(2)} / ${w.ratio.toFixed(2)}`
      return `| ${w.scenario} | ${s.requestsPerSec} | ${w.requestsPerSec} | ${gained} | ${ratios} | ` +
        `${s.gatewayCpuUsPerRequest} / ${w.gatewayCpuUsPerRequest} | ${s.cpu.gateway} / ${w.cpu.gateway} |`
    })
  ]
}

/** The markdown BENCHMARKS.md quotes: the machine, the setup, the ceiling, the tables and the memory lines. */
export function reportText (results: Results): string {
  const { machine, memory } = results
  return [
    `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}; load generator (${results.loadGenerator}) on the same machine.`,
    `Setup: gateway NODE_ENV=production, Redis store, LOG_LEVEL=warn, rate limits raised to ${RAISED_LIMIT}/min for the run${results.metrics ? ', Prometheus metrics on (METRICS_PORT)' : ''}; ` +
      `${results.connections} connections, ${results.warmupSec}s warm-up, ${results.durationSec}s measured; ` +
      `${results.rounds} round(s)${results.restart ? ', each on fresh gateway processes' : ''}, each ratio against its own round's ceiling, the median round shown (range of the ratio in brackets).`,
    ...ceilingLines(results),
    '',
    ...TABLE_HEAD,
    ...results.scenarios.map(tableRow),
    ...comparedLines(results),
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
