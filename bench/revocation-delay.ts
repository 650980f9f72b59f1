// The revocation delay under load (docs/design.md#the-access-check): two standalone gateways on one
// Redis, A and B. B serves steady authenticated load (wrk or autocannon, bench/loadgen.ts) while this
// script, again and again, logs a user in on A, has B answer the token twice (remembered, with
// ACCESS_CHECK=tracked), logs it out on A and at once sends B that token in a few requests in a row,
// each when the one before is answered. Per revocation: `refused`, the time from the logout's return
// to the start of B's first refusing request (an upper bound of the delay: it includes the requests
// before it, slowed by the load), and `stale`, to the start of B's last 200 (a lower bound; 0 when
// none). Reported: their p50, p99 and max, the share of revocations with a stale 200, and the load's
// throughput and latency. Not part of `npm run bench`; run it with
//   npm run build && npx tsc -p tsconfig.bench.json && node .bench/bench/revocation-delay.js
// BENCH_ACCESS_CHECK=strict measures strict mode on B; REVOCATIONS (300), CONNECTIONS (32).
import { loadavg } from 'node:os'
import { Agent, request } from 'undici'
import { createLoadGenerator, loadGeneratorName } from './loadgen.js'
import { startStack } from './processes.js'
import { prepareScenarios, scenarioAt } from './scenarios.js'

const MODE = process.env.BENCH_ACCESS_CHECK ?? 'tracked'
const REVOCATIONS = Number(process.env.REVOCATIONS ?? 300)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 32)
const PROBES = 4 // requests in a row after each logout, each sent when the one before is answered
const agent = new Agent({ connections: 8 })

async function call (url: string, token: string, method: 'GET' | 'POST' = 'GET', body?: unknown): Promise<{ status: number, text: string }> {
  const res = await request(url, {
    method,
    dispatcher: agent,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: res.statusCode, text: await res.body.text() }
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN

/** One revocation: from the logout's return to the start of B's first refusal and of its last stale 200 (ms). */
async function revokeOnce (a: string, b: string, n: number): Promise<{ refused: number, stale: number }> {
  const login = await request(`${a}/auth/login`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: `victim${n}.rd` }) })
  const { accessToken } = JSON.parse(await login.body.text()) as { accessToken: string }
  for (let i = 0; i < 2; i++) if ((await call(`${b}/auth/me`, accessToken)).status !== 200) throw new Error('B refused a live token')
  const out = await call(`${a}/auth/logout`, accessToken, 'POST', {})
  if (out.status !== 204 && out.status !== 200) throw new Error(`logout: ${out.status} ${out.text}`)
  const returned = performance.now()
  let stale = 0
  let refused = NaN
  for (let i = 0; i < PROBES; i++) {
    const sent = performance.now()
    const res = await call(`${b}/auth/me`, accessToken)
    if (res.status === 200) stale = sent - returned
    else if (res.status !== 401) throw new Error(`B answered ${res.status} ${res.text}`)
    else if (Number.isNaN(refused)) refused = sent - returned
  }
  if (Number.isNaN(refused)) throw new Error(`B still let the token through ${PROBES} requests after the logout`)
  return { refused, stale }
}

async function main (): Promise<void> {
  const stack = await startStack({
    gateways: [
      { label: 'A', workers: 1, metrics: false, env: { ACCESS_CHECK: 'strict' } },
      { label: 'B', workers: 1, metrics: false, env: { ACCESS_CHECK: MODE } }
    ],
    profile: false
  })
  try {
    const [a, b] = stack.gateways.map((g) => g.base) as [string, string]
    const authenticated = (await prepareScenarios(a, 1000, 'rd')).find((s) => s.name === 'authenticated')
    if (authenticated === undefined) throw new Error('no authenticated scenario')
    const loadgen = createLoadGenerator(loadGeneratorName(process.env.BENCH_LOADGEN), CONNECTIONS)
    const load0 = loadavg()[0] as number
    const duration = Math.max(10, Math.ceil(REVOCATIONS / 40))
    const loading = loadgen.run(scenarioAt(authenticated, a, b), duration)
    await new Promise((resolve) => setTimeout(resolve, 1000)) // the load is up
    const runs: Array<{ refused: number, stale: number }> = []
    for (let n = 0; n < REVOCATIONS; n++) runs.push(await revokeOnce(a, b, n))
    const load = await loading
    loadgen.close()
    const summary = (ms: number[]): Record<string, number> => {
      const sorted = ms.sort((x, y) => x - y)
      const round = (x: number): number => Math.round(x * 1000) / 1000
      return { p50: round(quantile(sorted, 0.5)), p99: round(quantile(sorted, 0.99)), max: round(sorted.at(-1) as number) }
    }
    process.stdout.write(JSON.stringify({
      mode: MODE,
      revocations: runs.length,
      withStaleAnswer: runs.filter((r) => r.stale > 0).length,
      firstRefusalMs: summary(runs.map((r) => r.refused)),
      lastStaleMs: summary(runs.map((r) => r.stale)),
      load: { generator: loadgen.name, connections: CONNECTIONS, requestsPerSec: Math.round(load.requestsPerSec), p50Ms: load.p50, p99Ms: load.p99, non2xx: load.non2xx },
      loadAverage: { before: load0, after: loadavg()[0] }
    }, null, 2) + '\n')
  } finally {
    await agent.close()
    await stack.stop()
  }
}

await main()
