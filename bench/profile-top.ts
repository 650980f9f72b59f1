// Prints the functions with the most self time in a V8 .cpuprofile: node .bench/bench/profile-top.js FILE [N]
import { readFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
const file = process.argv[2]
if (file === undefined) throw new Error('usage: profile-top FILE [N]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[] }
const total = profile.nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0)
const byFn = new Map<string, number>()
for (const n of profile.nodes) {
  const url = n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|lib)\//, '$1/')
  const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`
  byFn.set(key, (byFn.get(key) ?? 0) + (n.hitCount ?? 0))
}
const top = [...byFn].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 25))
for (const [k, v] of top) process.stdout.write(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}\n`)

// Self time by package (or node internals / the gateway's own code).
const byPkg = new Map<string, number>()
for (const n of profile.nodes) {
  const url = n.callFrame.url
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  const key = m !== null ? m[1] as string : url.startsWith('node:') ? 'node internals' : url === '' ? (n.callFrame.functionName || '(native)') : 'gateway code'
  byPkg.set(key, (byPkg.get(key) ?? 0) + (n.hitCount ?? 0))
}
process.stdout.write('\nby package:\n')
for (const [k, v] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(`${(100 * v / total).toFixed(1).padStart(5)}%  ${k}\n`)
