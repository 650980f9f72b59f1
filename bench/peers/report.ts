// The Go peer beside the gateway: per scenario, the req/s of the single-process gateway, of the one
// with workers and of the peer in the same round, ours ÷ the peer's in each kept round (measures taken
// while the machine was busy are left out, as in the main report: bench/ceiling.ts), and the CPU each
// spent per request.
import type { CeilingCheck } from '../ceiling.js'
import type { Measured } from '../rounds.js'

/** Issue 15's targets, in req/s: the gateway with two workers ÷ the Go peer (on a quiet machine). */
export const PEER_TARGETS: Record<string, number> = { authenticated: 1.0, refresh: 1.0, login: 0.8, 'login-limit': 0.8 }

/** One server's measure of a scenario in the round shown. */
interface Side {
  requestsPerSec: number
  /** CPU µs per request of the server (a primary with its workers; the peer's process) and of Redis. */
  cpuUsPerRequest: number
  redisCpuUsPerRequest: number
  /** % of one core the server used. */
  cpu: number
}

export interface PeerRow {
  scenario: string
  /** The round shown (1-based): the one with the median (workers ÷ peer) among the kept rounds. */
  round: number
  single: Side
  multi: Side
  peer: Side
  /** Per kept round, ours ÷ the peer's req/s: none when no round was quiet. */
  singleRatios: number[]
  multiRatios: number[]
  target: number | null
}

const sideOf = (m: Measured): Side => ({
  requestsPerSec: Math.round(m.result.requestsPerSec),
  cpuUsPerRequest: m.gatewayUsPerRequest,
  redisCpuUsPerRequest: m.redisUsPerRequest,
  cpu: m.cpu.gateway ?? 0
})

const ratio = (a: Measured, b: Measured): number => Number((a.result.requestsPerSec / Math.max(1, b.result.requestsPerSec)).toFixed(2))
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

/** `measured` is `[server][round][scenario]`: the single-process gateway, the one with workers, the peer. */
export function peerRows (measured: Measured[][][], kept: CeilingCheck['kept']): PeerRow[] {
  const [single = [], multi = [], peer = []] = measured
  return (single[0] ?? []).map(({ scenario }) => {
    const at = (rounds: Measured[][], i: number): Measured => rounds[i]?.find((m) => m.scenario === scenario) as Measured
    const all = single.map((_, i) => i)
    const keptRounds = all.filter((i) => kept[scenario]?.[i] === true)
    const byRatio = (keptRounds.length > 0 ? keptRounds : all).sort((a, b) => ratio(at(multi, a), at(peer, a)) - ratio(at(multi, b), at(peer, b)))
    const shown = byRatio[Math.floor(byRatio.length / 2)] as number
    return {
      scenario,
      round: shown + 1,
      single: sideOf(at(single, shown)),
      multi: sideOf(at(multi, shown)),
      peer: sideOf(at(peer, shown)),
      singleRatios: keptRounds.map((i) => ratio(at(single, i), at(peer, i))),
      multiRatios: keptRounds.map((i) => ratio(at(multi, i), at(peer, i))),
      target: PEER_TARGETS[scenario] ?? null
    }
  })
}

/** The median ratio, with each kept round's in brackets; n/r when none was quiet. */
function ratioText (ratios: number[]): string {
  if (ratios.length === 0) return 'n/r'
  return median(ratios).toFixed(2) + (ratios.length > 1 ? ` (${ratios.map((r) => r.toFixed(2)).join(', ')})` : '')
}

function targetText (r: PeerRow): string {
  if (r.target === null) return '–'
  if (r.multiRatios.length === 0) return `≥ ${r.target.toFixed(2)}: n/r`
  return `≥ ${r.target.toFixed(2)}: ${median(r.multiRatios) >= r.target ? 'met' : '**not met**'}`
}

export interface PeerReport {
  /** The gateways' labels as the table heads name them: the single-process one, the one with workers. */
  labels: [string, string]
  /** What the peer is and how it ran (versions, GOMAXPROCS, Redis connections). */
  about: string
  rows: PeerRow[]
}

/** The markdown table printed after the gateways' report. */
export function peerReportText ({ labels: [one, many], about, rows }: PeerReport): string {
  const three = (f: (s: Side) => number, r: PeerRow): string => `${f(r.single)} / ${f(r.multi)} / ${f(r.peer)}`
  return [
    '',
    `The Go peer (${about}), against the same Redis, simulator and load generator: each scenario measured in turn with the gateway's ` +
      `(${one} and ${many}) in every round, the order turning each round. Ratios are our req/s ÷ the peer's in the same round, over the rounds kept; the figures are the round with the median ${many} ÷ peer.`,
    '',
    `| scenario | req/s ${one} | req/s ${many} | req/s Go peer | ${one} ÷ peer | ${many} ÷ peer (each kept round) | target: ${many} ÷ peer | ` +
      `CPU µs/req ${one} / ${many} / peer | Redis CPU µs/req ${one} / ${many} / peer | CPU % ${one} / ${many} / peer |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.scenario} | ${r.single.requestsPerSec} | ${r.multi.requestsPerSec} | ${r.peer.requestsPerSec} | ` +
      `${ratioText(r.singleRatios)} | ${ratioText(r.multiRatios)} | ${targetText(r)} | ${three((s) => s.cpuUsPerRequest, r)} | ` +
      `${three((s) => s.redisCpuUsPerRequest, r)} | ${three((s) => s.cpu, r)} |`)
  ].join('\n') + '\n'
}
