// `npm run bench`: measures the built gateway against its own ceiling on this machine.
// Starts its own redis-server, the WeChat simulator (own process) and the gateway (own process,
// production setup: Redis store, revocation checks on), then runs each scenario with autocannon
// for a fixed time after a warm-up, and measures Redis memory per session.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { connectRedis } from '../lib/store/redis-client.js'
import { createRedisStore } from '../lib/store/redis.js'
import { createAccessTokens } from '../lib/access-tokens.js'
import { digest } from '../lib/ids.js'
import { createSessions } from '../lib/sessions.js'
import { freePort, start, startRedis, waitFor, type Proc } from './processes.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const DURATION = Number(process.env.BENCH_DURATION ?? 10)
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 1000)
const MEMORY_SESSIONS = Number(process.env.BENCH_MEMORY_SESSIONS ?? 100_000)
// Refreshes per session for the second memory measure (generations reach two digits).
const MEMORY_ROTATIONS = 12
// Every scenario, the ceiling included, runs once per round; each ratio is taken against the ceiling of
// its own round (measured a minute apart at most), and the round with the median ratio is reported.
if (SESSIONS < CONNECTIONS) throw new Error('BENCH_SESSIONS must be at least BENCH_CONNECTIONS: each refresh connection holds a session')
const ROUNDS = Math.max(1, Math.floor(Number(process.env.BENCH_ROUNDS ?? 3)))
const APPID = 'wx0123456789abcdef'
const SECRET = 'bench-secret-0123456789abcdef'
const RAISED_LIMIT = 1_000_000_000
// BENCH_PROFILE=1 writes a V8 CPU profile of the gateway to bench/results/ (see bench/profile-top.ts).
const PROFILE = process.env.BENCH_PROFILE === '1'
// The load generator: wrk (C, from the OS packages) when it is on the PATH, autocannon otherwise;
// BENCH_LOADGEN=wrk|autocannon chooses. On a machine with few cores the load generator's own CPU
// is taken from the gateway, Redis and the simulator, so the lighter one measures the gateway better.
const WRK_FOUND = spawnSync('wrk', ['--version']).error === undefined
const LOADGEN = process.env.BENCH_LOADGEN ?? (WRK_FOUND ? 'wrk' : 'autocannon')
if (LOADGEN !== 'wrk' && LOADGEN !== 'autocannon') throw new Error('BENCH_LOADGEN must be wrk or autocannon')
if (LOADGEN === 'wrk' && !WRK_FOUND) throw new Error('BENCH_LOADGEN=wrk, but wrk is not on the PATH (apt-get install -y wrk)')
// BENCH_ONLY=authenticated,refresh runs only those scenarios (the ceiling always runs).
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').filter((s) => s !== '')

interface Pair { accessToken: string, refreshToken: string }

interface Scenario {
  name: string
  describe: string
  /** How autocannon runs it. */
  options: autocannon.Options
  /** How wrk runs it: a script of bench/wrk/ and its arguments (fresh for each run). */
  wrk: { script: string, path?: string, args: () => string[] }
}

/** What one measured run gave, whichever load generator made it. */
interface LoadResult {
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
  /** Lowest and highest ratio over the rounds. */
  ratioRange: [number, number]
}

/** Per scenario, the round with the median ratio (errors summed over all rounds, so none hides). */
function medianRows (rounds: Row[][]): Row[] {
  return (rounds[0] ?? []).map(({ scenario }) => {
    const runs = rounds.map((r) => r.find((x) => x.scenario === scenario) as Row)
      .sort((a, b) => a.ratio - b.ratio || a.requestsPerSec - b.requestsPerSec)
    const median = runs[Math.floor(runs.length / 2)] as Row
    const sum = (k: 'non2xx' | 'errors' | 'timeouts'): number => runs.reduce((n, r) => n + r[k], 0)
    return {
      ...median,
      non2xx: sum('non2xx'),
      errors: sum('errors'),
      timeouts: sum('timeouts'),
      ratioRange: [(runs[0] as Row).ratio, (runs.at(-1) as Row).ratio]
    }
  })
}

async function post (url: string, body: unknown): Promise<Pair> {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${text}`)
  return JSON.parse(text) as Pair
}

/** Logs in `count` users, 20 at a time. */
async function prepareSessions (base: string, count: number, prefix: string): Promise<Pair[]> {
  const out: Pair[] = []
  let next = 0
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (next < count) {
      const i = next++
      out[i] = await post(`${base}/auth/login`, { code: `${prefix}${i}.prep` })
    }
  }))
  return out
}

/** Seconds in two adjacent /proc/<pid>/stat fields (clock ticks of 1/100 s), counted after the name. */
function ticksOf (stat: string, first: number): number {
  const fields = stat.split(') ')[1]?.split(' ') ?? []
  return (Number(fields[first]) + Number(fields[first + 1])) / 100
}

/** CPU seconds a process has used so far (Linux /proc; 0 elsewhere). */
function cpuSeconds (pid: number | undefined): number {
  try {
    return ticksOf(readFileSync(`/proc/${pid ?? 0}/stat`, 'utf8'), 11) // utime + stime
  } catch {
    return 0
  }
}

async function runAutocannon (s: Scenario, duration: number): Promise<LoadResult> {
  const self = process.cpuUsage()
  const r = await autocannon({ ...s.options, duration, connections: CONNECTIONS })
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

const wrkDir = LOADGEN === 'wrk' ? mkdtempSync(join(tmpdir(), 'wxauth-bench-')) : ''
const wrkReport = readFileSync(`${root}/bench/wrk/report.lua`, 'utf8')

/**
 * One wrk run (one thread: it needs a fraction of a core here). Its CPU time is read by the shell
 * that waited for it (its children's time in /proc), so none of it escapes the measure.
 */
async function runWrk (s: Scenario, duration: number, base: string): Promise<LoadResult> {
  const script = join(wrkDir, `${s.wrk.script}.lua`)
  writeFileSync(script, readFileSync(`${root}/bench/wrk/${s.wrk.script}.lua`, 'utf8') + '\n' + wrkReport)
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${duration}s`, '--timeout', '10s', '-s', script, `${base}${s.wrk.path ?? '/'}`, '--', ...s.wrk.args()]
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

async function measure (s: Scenario, procs: Record<string, Proc>, base: string): Promise<{ result: LoadResult, cpu: Record<string, number>, gatewayUsPerRequest: number, redisUsPerRequest: number }> {
  const run = async (duration: number): Promise<LoadResult> => LOADGEN === 'wrk' ? await runWrk(s, duration, base) : await runAutocannon(s, duration)
  await run(WARMUP)
  const before = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, cpuSeconds(p.child.pid)]))
  const started = Date.now()
  const result = await run(DURATION)
  const wall = (Date.now() - started) / 1000
  const cpu: Record<string, number> = {}
  for (const [k, p] of Object.entries(procs)) cpu[k] = Math.round(100 * (cpuSeconds(p.child.pid) - (before[k] ?? 0)) / wall)
  cpu.loadgen = Math.round(100 * result.cpuSeconds / wall)
  const usPerRequest = (name: string): number =>
    Math.round((cpuSeconds(procs[name]?.child.pid) - (before[name] ?? 0)) * 1e6 / Math.max(1, result.total))
  return { result, cpu, gatewayUsPerRequest: usPerRequest('gateway'), redisUsPerRequest: usPerRequest('redis') }
}

interface MemoryResult {
  sessions: number
  bytesPerSession: number
  keysPerSession: number
  /** Bytes per session after one rotation, and after MEMORY_ROTATIONS of them. */
  bytesAfterOneRotation: number
  bytesAfterManyRotations: number
}

const usedMemory = async (admin: Redis): Promise<number> => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])

/**
 * Logs MEMORY_SESSIONS distinct users in and refreshes their sessions through lib/sessions.ts, the
 * flows the gateway runs, against Redis; WeChat answers with ids shaped like its own.
 */
async function memoryPerSession (redisUrl: string): Promise<MemoryResult> {
  const admin = new Redis(redisUrl)
  await admin.flushall()
  const before = await usedMemory(admin)
  const client = await connectRedis({ url: redisUrl, timeoutMs: 5000 })
  const store = createRedisStore({ client, keyPrefix: 'wxauth:', timeoutMs: 5000, ownsClient: true })
  const secret = 'bench-secret-0123456789abcdefghij'
  const sessions = createSessions({
    store,
    // Shaped like WeChat's: 28-character openid and unionid, 24-character session_key.
    wechat: {
      appids: [APPID],
      appOf: () => APPID,
      code2Session: async (code) => ({
        openid: `o${digest(`openid-${code}`)}${digest(`o2-${code}`)}`.slice(0, 28),
        unionid: `u${digest(`unionid-${code}`)}${digest(`u2-${code}`)}`.slice(0, 28),
        sessionKey: randomBytes(16).toString('base64')
      })
    },
    tokens: createAccessTokens({ secret, issuer: 'bench', ttlSec: 900, appids: [APPID], store }),
    config: { jwtSecret: secret, JWT_SECRET_PREVIOUS: undefined, REFRESH_TOKEN_TTL: 2_592_000, SESSION_MAX_AGE: 7_776_000, REFRESH_GRACE_SECONDS: 10 },
    log: { warn: () => {} }
  })
  const tokens: string[] = []
  const parallel = async (fn: (i: number) => Promise<void>): Promise<void> => {
    let next = 0
    await Promise.all(Array.from({ length: 50 }, async () => { while (next < MEMORY_SESSIONS) await fn(next++) }))
  }
  await parallel(async (i) => { tokens[i] = (await sessions.login(String(i))).refreshToken })
  // Login codes are remembered for 10 minutes, not for the session's life: not counted per session.
  for await (const batch of admin.scanStream({ match: 'wxauth:c:*', count: 1000 })) {
    if ((batch as string[]).length > 0) await admin.unlink(...(batch as string[]))
  }
  const fresh = await usedMemory(admin)
  const keys = await admin.dbsize()
  const rotateAll = async (): Promise<void> => {
    await parallel(async (i) => { tokens[i] = (await sessions.refresh(tokens[i] as string)).refreshToken })
  }
  await rotateAll()
  const once = await usedMemory(admin)
  for (let r = 1; r < MEMORY_ROTATIONS; r++) await rotateAll()
  const full = await usedMemory(admin)
  await store.close()
  admin.disconnect()
  const per = (bytes: number): number => Math.round((bytes - before) / MEMORY_SESSIONS)
  return { sessions: MEMORY_SESSIONS, bytesPerSession: per(fresh), keysPerSession: keys / MEMORY_SESSIONS, bytesAfterOneRotation: per(once), bytesAfterManyRotations: per(full) }
}

async function main (): Promise<void> {
  const procs: Proc[] = []
  const stopAll = async (): Promise<void> => { for (const p of procs.reverse()) await p.stop() }
  try {
    const redisPort = await freePort()
    const simPort = await freePort()
    const gwPort = await freePort()
    const redisUrl = `redis://127.0.0.1:${redisPort}`
    const redisProc = await startRedis(redisPort)
    procs.push(redisProc)
    const sim = start('simulator', process.execPath, [`${root}/dist/simulator/cli.js`], { PORT: String(simPort), WECHAT_APPID: APPID, WECHAT_SECRET: SECRET })
    procs.push(sim)
    await waitFor(`http://127.0.0.1:${simPort}/sns/jscode2session`, sim)
    const profileArgs = PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${root}/bench/results`] : []
    const gw = start('gateway', process.execPath, [...profileArgs, `${root}/dist/server.js`], {
      NODE_ENV: 'production',
      PORT: String(gwPort),
      LOG_LEVEL: 'warn',
      WECHAT_APPID: APPID,
      WECHAT_SECRET: SECRET,
      WECHAT_API_BASE: `http://127.0.0.1:${simPort}`,
      REDIS_URL: redisUrl,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      RATE_LIMIT_LOGIN_MAX: String(RAISED_LIMIT),
      RATE_LIMIT_REFRESH_MAX: String(RAISED_LIMIT)
    })
    procs.push(gw)
    const base = `http://127.0.0.1:${gwPort}`
    await waitFor(`${base}/health`, gw)

    const authed = await prepareSessions(base, SESSIONS, 'reader')
    const rotating = await prepareSessions(base, SESSIONS, 'rotor')
    const idle = rotating.map((p) => ({ token: p.refreshToken }))
    let meIndex = 0
    let loginSeq = 0
    // wrk's state lives in files: the access tokens, and the refresh tokens each run leaves behind.
    const accessFile = join(wrkDir, 'access-tokens.txt')
    const refreshFile = join(wrkDir, 'refresh-tokens.txt')
    if (LOADGEN === 'wrk') {
      writeFileSync(accessFile, authed.map((p) => p.accessToken).join('\n') + '\n')
      writeFileSync(refreshFile, rotating.map((p) => p.refreshToken).join('\n') + '\n')
    }
    let wrkRun = 0

    const scenarios: Scenario[] = [
      {
        name: 'ceiling',
        describe: 'GET /health/live: trivial JSON, no auth, no Redis',
        options: { url: `${base}/health/live` },
        wrk: { script: 'ceiling', path: '/health/live', args: () => [] }
      },
      {
        name: 'authenticated',
        describe: `GET /auth/me with valid access tokens of ${SESSIONS} sessions (signature, claims, blacklist and session checks)`,
        options: {
          url: base,
          requests: [{
            method: 'GET',
            path: '/auth/me',
            setupRequest: (req) => ({ ...req, headers: { authorization: `Bearer ${(authed[meIndex++ % authed.length] as Pair).accessToken}` } })
          }]
        },
        wrk: { script: 'authenticated', args: () => [accessFile] }
      },
      {
        name: 'refresh',
        describe: `POST /auth/refresh chains over ${SESSIONS} sessions: each request presents the token the last one returned`,
        options: {
          url: base,
          requests: [{
            method: 'POST',
            path: '/auth/refresh',
            headers: { 'content-type': 'application/json' },
            setupRequest: (req, context) => {
              const s = idle.shift()
              if (s === undefined) throw new Error('more connections than sessions')
              ;(context as { session?: { token: string } }).session = s
              return { ...req, body: JSON.stringify({ refreshToken: s.token }) }
            },
            onResponse: (status, body, context) => {
              const s = (context as { session: { token: string } }).session
              if (status === 200) s.token = (JSON.parse(body) as Pair).refreshToken
              idle.push(s)
            }
          }]
        },
        wrk: { script: 'refresh', args: () => [refreshFile] }
      },
      {
        name: 'login',
        describe: 'POST /auth/login with fresh codes of 10,000 users, through the simulator over HTTP',
        options: {
          url: base,
          requests: [{
            method: 'POST',
            path: '/auth/login',
            headers: { 'content-type': 'application/json' },
            setupRequest: (req) => {
              const n = loginSeq++
              return { ...req, body: JSON.stringify({ code: `user${n % 10_000}.${n}` }) }
            }
          }]
        },
        wrk: { script: 'login', args: () => [`w${++wrkRun}`] }
      }
    ]

    const selected = scenarios.filter((x) => x.name === 'ceiling' || ONLY.length === 0 || ONLY.includes(x.name))
    const rounds: Row[][] = []
    for (let round = 1; round <= ROUNDS; round++) {
      const rows: Row[] = []
      let ceiling = 0
      for (const s of selected) {
        process.stderr.write(`round ${round}/${ROUNDS}: ${s.name} (${WARMUP}s warm-up, ${DURATION}s measured, ${CONNECTIONS} connections)\n`)
        const { result: r, cpu, gatewayUsPerRequest, redisUsPerRequest } = await measure(s, { gateway: gw, redis: redisProc, simulator: sim }, base)
        if (s.name === 'ceiling') ceiling = r.requestsPerSec
        const ratio = Number((r.requestsPerSec / ceiling).toFixed(2))
        rows.push({
          scenario: s.name,
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
          ratioRange: [ratio, ratio]
        })
      }
      rounds.push(rows)
    }
    const rows = medianRows(rounds)
    await gw.stop() // ends the CPU profile, if any, before Redis is flushed for the memory run
    process.stderr.write(`measuring Redis memory with ${MEMORY_SESSIONS} sessions\n`)
    const memory = await memoryPerSession(redisUrl)

    const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version }
    const lines = [
      `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}; load generator (${LOADGEN}) on the same machine.`,
      `Setup: gateway NODE_ENV=production, Redis store, LOG_LEVEL=warn, rate limits raised to ${RAISED_LIMIT}/min for the run; ${CONNECTIONS} connections, ${WARMUP}s warm-up, ${DURATION}s measured; ` +
        `${ROUNDS} round(s), each ratio against its own round's ceiling, the median round shown (range of the ratio in brackets).`,
      '',
      '| scenario | req/s | p50 ms | p99 ms | non-2xx | errors | × ceiling | CPU µs/req gateway / redis | CPU % gateway / redis / simulator / load generator |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
      ...rows.map((r) => `| ${r.scenario} | ${r.requestsPerSec} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors + r.timeouts} | ${r.ratio.toFixed(2)}${ROUNDS > 1 && r.scenario !== 'ceiling' ? ` (${r.ratioRange[0].toFixed(2)}–${r.ratioRange[1].toFixed(2)})` : ''} | ${r.gatewayCpuUsPerRequest} / ${r.redisCpuUsPerRequest} | ${r.cpu.gateway} / ${r.cpu.redis} / ${r.cpu.simulator} / ${r.cpu.loadgen} |`),
      '',
      `Redis memory (${memory.sessions} sessions of distinct users, used_memory delta / count): ${memory.bytesPerSession} bytes and ${memory.keysPerSession.toFixed(2)} keys per new session; ` +
        `${memory.bytesAfterOneRotation} bytes after one refresh; ${memory.bytesAfterManyRotations} bytes after ${MEMORY_ROTATIONS} refreshes.`
    ]
    process.stdout.write(lines.join('\n') + '\n')
    mkdirSync(`${root}/bench/results`, { recursive: true })
    const file = `${root}/bench/results/latest.json`
    writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine, loadGenerator: LOADGEN, connections: CONNECTIONS, warmupSec: WARMUP, durationSec: DURATION, rounds: ROUNDS, scenarios: rows, perRound: rounds, memory }, null, 2) + '\n')
    process.stderr.write(`results written to ${file}\n`)
    const failed = rows.filter((r) => r.non2xx > 0 || r.errors > 0 || r.timeouts > 0)
    if (failed.length > 0) {
      process.stderr.write(`\nBENCHMARK FAILED: errors in ${failed.map((r) => r.scenario).join(', ')}\n${gw.output()}\n`)
      process.exitCode = 1
    }
  } finally {
    await stopAll()
    if (wrkDir !== '') rmSync(wrkDir, { recursive: true, force: true })
  }
}

await main()
