// `npm run bench:peers`: the gateway beside the Go peer (bench/peers/go/, the common Gin + golang-jwt
// + redigo design: BENCHMARKS.md, "The Go peer"). Starts Redis, the simulator and the gateway twice
// (one process, and BENCH_WORKERS workers, 2 by default) as `npm run bench` does, then the peer with
// as many Go threads (GOMAXPROCS) as the gateway has workers; every scenario runs on the three in turn
// within each round, with the same load generator. Prints the gateways' usual report, then the peer's
// table; writes bench/results/peers.json. Without Go or its packages, it says so and exits 0.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ceilingsOf, checkRounds, recordCeilings, usualCeiling } from './ceiling.js'
import { benchConfig, ceilingSetupOf, gatewaysOf, type BenchConfig } from './config.js'
import { createLoadGenerator } from './loadgen.js'
import { paths } from './paths.js'
import { buildGoPeer, startGoPeer, type GoPeer, type GoPeerBuild } from './peers/go.js'
import { peerReportText, peerRows } from './peers/report.js'
import type { Stack } from './processes.js'
import { startStack } from './processes.js'
import { reportText, resultsOf } from './report.js'
import { runRounds, type Target } from './rounds.js'
import { prepareScenarios, scenarioAt } from './scenarios.js'

/** The peer's scenarios use sessions it opened itself; the ceiling and login are the gateway's, moved to its URL. */
const OWN_SESSIONS = new Set(['authenticated', 'refresh'])

/**
 * The two gateways, then the peer, with the same scenarios in the same order. Login's codes come from
 * one counter for all three (scenarioAt keeps it), so each stays fresh at the simulator.
 */
async function targetsOf (stack: Stack, peer: GoPeer, config: BenchConfig): Promise<Target[]> {
  const { gateways, redis, simulator } = stack
  const base = gateways[0]?.base as string
  const wanted = (name: string): boolean => name === 'ceiling' || config.only.length === 0 || config.only.includes(name)
  const scenarios = (await prepareScenarios(base, config.sessions)).filter((s) => wanted(s.name))
  const peerOwn = (await prepareScenarios(peer.base, config.sessions, 'peer')).filter((s) => OWN_SESSIONS.has(s.name))
  const peerScenarios = scenarios.map((s) => peerOwn.find((p) => p.name === s.name) ?? scenarioAt(s, base, peer.base))
  return [
    ...gateways.map((g) => ({ label: g.label, scenarios: scenarios.map((s) => scenarioAt(s, base, g.base)), procs: { gateway: g.proc, redis, simulator } })),
    { label: 'Go peer', scenarios: peerScenarios, procs: { gateway: peer.proc, redis, simulator } }
  ]
}

async function main (config: BenchConfig, build: GoPeerBuild): Promise<void> {
  const workers = config.workers ?? 2
  const { specs, compared } = gatewaysOf({ metrics: config.metrics, workers })
  const loadgen = createLoadGenerator(config.loadgen, config.connections)
  let stack: Stack | undefined
  let peer: GoPeer | undefined
  try {
    stack = await startStack({ gateways: specs, profile: config.profile, nodeArgs: config.nodeArgs })
    peer = await startGoPeer(build, stack, workers)
    const measured = await runRounds(loadgen, await targetsOf(stack, peer, config), config)

    const ceilings = ceilingsOf(measured[0] ?? [])
    const setup = ceilingSetupOf(config)
    // Judged over the three: a measure counts only if it was quiet on each of them.
    const check = checkRounds(measured, usualCeiling(process.env, setup, ceilings))
    recordCeilings(setup, ceilings)
    const results = resultsOf({ ...config, metrics: config.metrics === 'on', compared }, measured.slice(0, 2), check, [])
    const versions = Object.entries(build.versions).map(([k, v]) => `${k} ${v}`).join(', ')
    const peerReport = { labels: ['1 process', `${workers} workers`] as [string, string], about: `${peer.about}; ${versions}`, rows: peerRows(measured, check.kept) }
    process.stdout.write(reportText(results) + peerReportText(peerReport))
    mkdirSync(paths.results, { recursive: true })
    const file = join(paths.results, 'peers.json')
    const peerResults = { ...peerReport, versions: build.versions, ceilingPerRound: ceilingsOf(measured[2] ?? []), perRound: measured[2] }
    writeFileSync(file, JSON.stringify({ ...results, peer: peerResults }, null, 2) + '\n')
    process.stderr.write(`results written to ${file}\n`)

    const servers = [...stack.gateways.map((g) => ({ label: g.label, proc: g.proc })), { label: 'Go peer', proc: peer.proc }]
    const failed = servers.flatMap((s, t) => (measured[t] ?? []).flat()
      .filter((m) => m.result.non2xx > 0 || m.result.errors > 0 || m.result.timeouts > 0)
      .map((m) => `${m.scenario} (${s.label})`))
    if (failed.length > 0) {
      const outputs = servers.map((s) => `--- ${s.label}:\n${s.proc.output()}`).join('\n')
      process.stderr.write(`\nBENCHMARK FAILED: errors in ${[...new Set(failed)].join(', ')}\n${outputs}\n`)
      process.exitCode = 1
    }
  } finally {
    await peer?.proc.stop()
    await stack?.stop()
    loadgen.close()
  }
}

const config = benchConfig(process.env)
if (config.metrics === 'compare') throw new Error('BENCH_METRICS=compare and bench:peers: one comparison at a time')
const build = buildGoPeer()
if ('skipped' in build) process.stderr.write(`bench:peers: the Go peer is skipped, nothing measured: ${build.skipped}\n`)
else await main(config, build)
