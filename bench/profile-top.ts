// Prints the functions with the most self time in a V8 .cpuprofile:
//   node .bench/bench/profile-top.js FILE [N] [FROM-TO]
// FROM-TO (seconds since the profile's start, e.g. 14-22) keeps only the samples of that window, so
// one scenario of a bench run can be read apart from the ceiling measured before it; without it,
// every sample counts. `--timeline` as the window prints, per second, the share of samples not idle.
import { readFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
interface Profile { nodes: Node[], samples?: number[], timeDeltas?: number[] }
const [file, limit, window] = process.argv.slice(2)
if (file === undefined) throw new Error('usage: profile-top FILE [N] [FROM-TO | --timeline]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile

/** Each sample's node id and time in seconds since the first sample. */
function timedSamples (): Array<{ id: number, at: number }> {
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  let t = 0
  return samples.map((id, i) => { t += deltas[i] ?? 0; return { id, at: t / 1e6 } })
}

/** Hits per node id: the profile's own counts, or the samples of the window. */
function hitsPerNode (): Map<number, number> {
  const hits = new Map<number, number>()
  const range = window !== undefined && window !== '--timeline' ? window.split('-').map(Number) : undefined
  if (range === undefined) {
    for (const n of profile.nodes) hits.set(n.id, n.hitCount ?? 0)
    return hits
  }
  const [from = 0, to = Infinity] = range.map((x, i) => Number.isFinite(x) && (i === 0 || x > 0) ? x : i === 0 ? 0 : Infinity)
  for (const s of timedSamples()) if (s.at >= from && s.at < to) hits.set(s.id, (hits.get(s.id) ?? 0) + 1)
  return hits
}

if (window === '--timeline') {
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id))
  const perSecond = new Map<number, [number, number]>()
  for (const s of timedSamples()) {
    const sec = Math.floor(s.at)
    const [busy, all] = perSecond.get(sec) ?? [0, 0]
    perSecond.set(sec, [busy + (idle.has(s.id) ? 0 : 1), all + 1])
  }
  for (const [sec, [busy, all]] of perSecond) process.stdout.write(`${String(sec).padStart(4)}s  ${(100 * busy / all).toFixed(0).padStart(3)}% busy  ${all} samples\n`)
  process.exit(0)
}

const hits = hitsPerNode()
const total = [...hits.values()].reduce((n, x) => n + x, 0)
const byFn = new Map<string, number>()
for (const n of profile.nodes) {
  const url = n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|lib)\//, '$1/')
  const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`
  byFn.set(key, (byFn.get(key) ?? 0) + (hits.get(n.id) ?? 0))
}
const top = [...byFn].sort((a, b) => b[1] - a[1]).slice(0, Number(limit ?? 25))
for (const [k, v] of top) process.stdout.write(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}\n`)

// Self time by package (or node internals / the gateway's own code).
const byPkg = new Map<string, number>()
for (const n of profile.nodes) {
  const url = n.callFrame.url
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  const key = m !== null ? m[1] as string : url.startsWith('node:') ? 'node internals' : url === '' ? (n.callFrame.functionName || '(native)') : 'gateway code'
  byPkg.set(key, (byPkg.get(key) ?? 0) + (hits.get(n.id) ?? 0))
}
process.stdout.write(`\nby package (${total} samples):\n`)
for (const [k, v] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}\n`)
