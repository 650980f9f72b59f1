// The load generator: wrk (C, from the OS packages) when it is on the PATH, autocannon otherwise;
// BENCH_LOADGEN=wrk|autocannon chooses. On a machine with few cores the load generator's own CPU
// is taken from the gateway, Redis and the simulator, so the lighter one measures the gateway better.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { paths } from './paths.js'
import { ticksOf } from './cpu.js'
import type { Scenario } from './scenarios.js'

export type LoadGeneratorName = 'wrk' | 'autocannon'

/** What one measured run gave, whichever load generator made it. */
export interface LoadResult {
  requestsPerSec: number
  total: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  timeouts: number
  /** CPU seconds the load generator used. */
  cpuSeconds: number
}

export interface LoadGenerator {
  name: LoadGeneratorName
  /** Runs `s` for `durationSec` seconds. */
  run: (s: Scenario, durationSec: number) => Promise<LoadResult>
  /** Removes the files it wrote. */
  close: () => void
}

/** The load generator BENCH_LOADGEN names (`requested`), or else wrk when it is on the PATH. */
export function loadGeneratorName (requested: string | undefined): LoadGeneratorName {
  const wrkFound = spawnSync('wrk', ['--version']).error === undefined
  const name = requested ?? (wrkFound ? 'wrk' : 'autocannon')
  if (name !== 'wrk' && name !== 'autocannon') throw new Error('BENCH_LOADGEN must be wrk or autocannon')
  if (name === 'wrk' && !wrkFound) throw new Error('BENCH_LOADGEN=wrk, but wrk is not on the PATH (apt-get install -y wrk)')
  return name
}

export function createLoadGenerator (name: LoadGeneratorName, connections: number): LoadGenerator {
  return name === 'wrk' ? createWrk(connections) : createAutocannon(connections)
}

/** autocannon runs in this process: its CPU time is this process's during the run. */
function createAutocannon (connections: number): LoadGenerator {
  const run = async (s: Scenario, duration: number): Promise<LoadResult> => {
    const self = process.cpuUsage()
    const r = await autocannon({ ...s.options, duration, connections })
    const used = process.cpuUsage(self)
    return {
      requestsPerSec: r.requests.average,
      total: r.requests.total,
      p50: r.latency.p50,
      p99: r.latency.p99,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      cpuSeconds: (used.user + used.system) / 1e6
    }
  }
  return { name: 'autocannon', run, close: () => {} }
}

/**
 * wrk, one thread (it needs a fraction of a core here), with the scenario's script followed by
 * report.lua; scripts and data files go to a temporary directory that `close` removes.
 */
function createWrk (connections: number): LoadGenerator {
  const dir = mkdtempSync(join(tmpdir(), 'wxauth-bench-'))
  const report = readFileSync(join(paths.wrkScripts, 'report.lua'), 'utf8')
  // A data file is written once, unless its scenario says it is `fresh`: a script may rewrite it for
  // the next run (refresh does). One file per list of lines, so that the same scenario at another
  // gateway (scenarioAt) shares it and a peer's scenario of the same name, with its own sessions, does not.
  const written = new Map<string[], string>()
  const fileOf = (s: Scenario): string => {
    if (s.wrk.file === undefined) return join(dir, `${s.name}.txt`)
    let file = written.get(s.wrk.file)
    if (file === undefined || s.wrk.fresh === true) {
      file ??= join(dir, `${s.name}-${written.size}.txt`)
      writeFileSync(file, s.wrk.file.join('\n') + '\n')
      written.set(s.wrk.file, file)
    }
    return file
  }
  const run = async (s: Scenario, duration: number): Promise<LoadResult> => {
    const script = join(dir, `${s.wrk.script}.lua`)
    writeFileSync(script, readFileSync(join(paths.wrkScripts, `${s.wrk.script}.lua`), 'utf8') + '\n' + report)
    return await runWrk(['-t1', `-c${connections}`, `-d${duration}s`, '--timeout', '10s', '-s', script, s.wrk.url, '--', ...s.wrk.args(fileOf(s))])
  }
  return { name: 'wrk', run, close: () => rmSync(dir, { recursive: true, force: true }) }
}

/**
 * One wrk run. Its CPU time is read by the shell that waited for it (its children's time in /proc),
 * so none of it escapes the measure.
 */
async function runWrk (args: string[]): Promise<LoadResult> {
  const child = spawn('sh', ['-c', 'wrk "$@"; status=$?; cat /proc/$$/stat >&2; exit $status', 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  const line = out.split('\n').reverse().find((l) => l.startsWith('{"requests"'))
  if (code !== 0 || line === undefined) throw new Error(`wrk failed (exit ${String(code)}):\n${out}\n${err}`)
  const j = JSON.parse(line) as Record<'requests' | 'durationUs' | 'connect' | 'read' | 'write' | 'status' | 'timeout' | 'p50' | 'p99', number>
  return {
    requestsPerSec: j.requests / (j.durationUs / 1e6),
    total: j.requests,
    p50: Math.round(j.p50 / 100) / 10,
    p99: Math.round(j.p99 / 100) / 10,
    non2xx: j.status,
    errors: j.connect + j.read + j.write,
    timeouts: j.timeout,
    // The shell's stat: cutime + cstime, the CPU time of the children it waited for (wrk).
    cpuSeconds: ticksOf(err.trim().split('\n').at(-1) ?? '', 13)
  }
}
