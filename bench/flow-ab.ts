// `npm run bench:ab -- OTHER_TREE`: the CPU a refresh and a login flow cost in two builds of the gateway,
// measured in one process in alternated slices, so that a machine whose speed drifts (this one moves
// ±20 % within minutes) slows both alike. Each build is a tree with `dist/` built (a `git worktree` of
// another commit with `npm run build`); the second is this tree unless a second path is given. Each
// runs its own gateway app (Fastify, the Redis store, its own key prefix) against one Redis and the
// WeChat simulator this script starts; only the flows are called (`sessions.refresh`,
// `sessions.login`): no HTTP in front, so the figure is the flow's own CPU, with its Redis and WeChat
// client work; Redis's CPU per call is read from /proc (10 ms ticks: a slice of 4,000 refreshes uses some
// 60 ms of it), and its scripts' time from INFO commandstats (EVALSHA and EVAL, the commands they run
// included, network work not: precise to a tenth of a µs), with each build's commands per call at the
// end (a command a script runs is counted there too, and inside its script's time).
// Knobs: AB_FLOWS (refresh,login), AB_PAIRS (12), AB_OPS (operations per slice, 4000).
import { randomBytes } from 'node:crypto'
import { createClient } from '@redis/client'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { cpuSeconds } from './cpu.js'
import { APPID, SECRET, RAISED_LIMIT, freePort, start, startRedis, waitFor, type Proc } from './processes.js'
import { paths } from './paths.js'

interface Flows {
  refresh: (token: string) => Promise<{ refreshToken: string }>
  login: (code: string) => Promise<{ refreshToken: string }>
}
interface App { wechatAuthSessions: Flows, register: (plugin: unknown, opts: unknown) => Promise<unknown>, ready: () => Promise<unknown>, close: () => Promise<unknown> }

const CONCURRENCY = 50
const env = process.env
const flowsAsked = (env.AB_FLOWS ?? 'refresh,login').split(',')
if (flowsAsked.some((f) => f !== 'refresh' && f !== 'login')) throw new Error('AB_FLOWS: refresh, login or both, comma-separated')
const PAIRS = Number(env.AB_PAIRS ?? 12)
const OPS = Number(env.AB_OPS ?? 4000)

/** The gateway app of the build in `tree`, on `redisUrl` with its own key prefix. */
async function appOf (tree: string, tag: string, redisUrl: string, simulatorUrl: string, jwtSecret: string): Promise<App> {
  const load = async (path: string): Promise<Record<string, unknown>> => await import(pathToFileURL(join(tree, path)).href) as Record<string, unknown>
  const Fastify = (await load('node_modules/fastify/fastify.js')).default as (opts: unknown) => App
  const wechatAuth = (await load('dist/app.js')).default
  const { loadConfig } = await load('dist/lib/config.js') as { loadConfig: (env: Record<string, string>) => unknown }
  const { serverOptions } = await load('dist/http/server-options.js') as { serverOptions: (config: unknown) => unknown }
  const config = loadConfig({
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: `ab${tag}:`,
    JWT_SECRET: jwtSecret,
    WECHAT_APPID: APPID,
    WECHAT_SECRET: SECRET,
    WECHAT_API_BASE: simulatorUrl,
    RATE_LIMIT_LOGIN_MAX: String(RAISED_LIMIT),
    RATE_LIMIT_REFRESH_MAX: String(RAISED_LIMIT)
  })
  const app = Fastify(serverOptions(config))
  await app.register(wechatAuth, { config, env: false })
  await app.ready()
  return app
}

/** Runs `n` calls of a flow over CONCURRENCY chains; a refresh chain goes on with each successor. */
function runnerOf (app: App, flow: string, tag: string): (n: number) => Promise<void> {
  const flows = app.wechatAuthSessions
  let seq = 0
  const code = (): string => `user${seq % 10_000}.ab${tag}-${seq++}`
  const tokens: string[] = []
  return async (n) => {
    while (tokens.length < CONCURRENCY) tokens.push((await flows.login(code())).refreshToken)
    let next = 0
    await Promise.all(tokens.map(async (_, i) => {
      while (next++ < n) {
        if (flow === 'refresh') tokens[i] = (await flows.refresh(tokens[i] as string)).refreshToken
        else await flows.login(code())
      }
    }))
  }
}

type CommandStats = Map<string, { calls: number, usec: number }>
type StatsOf = () => Promise<CommandStats>

/** Redis's INFO commandstats: calls and µs per command. */
function commandStatsOf (info: string): CommandStats {
  const stats: CommandStats = new Map()
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) stats.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) })
  return stats
}

/** What each command did between two readings. */
function statsBetween (before: CommandStats, after: CommandStats): CommandStats {
  const delta: CommandStats = new Map()
  for (const [name, { calls, usec }] of after) {
    const was = before.get(name) ?? { calls: 0, usec: 0 }
    if (calls > was.calls) delta.set(name, { calls: calls - was.calls, usec: usec - was.usec })
  }
  return delta
}

const SCRIPT_COMMANDS = ['evalsha', 'eval', 'fcall']
const scriptUsecOf = (stats: CommandStats): number => SCRIPT_COMMANDS.reduce((n, name) => n + (stats.get(name)?.usec ?? 0), 0)

/** µs of this process's CPU, of Redis's and of Redis's scripts per call over OPS calls, and what each command did. */
async function cpuPerOp (run: (n: number) => Promise<void>, redisPid: number | undefined, stats: StatsOf): Promise<[number, number, number, CommandStats]> {
  const redisBefore = cpuSeconds(redisPid)
  const statsBefore = await stats()
  const before = process.cpuUsage()
  await run(OPS)
  const used = process.cpuUsage(before)
  const redisUsed = cpuSeconds(redisPid) - redisBefore
  const commands = statsBetween(statsBefore, await stats())
  return [(used.user + used.system) / OPS, redisUsed * 1e6 / OPS, scriptUsecOf(commands) / OPS, commands]
}

/** Each command's calls and µs per flow call, over the slices of one build. */
function perCall (slices: CommandStats[]): string {
  const sum: CommandStats = new Map()
  for (const slice of slices) {
    for (const [name, s] of slice) {
      const t = sum.get(name) ?? { calls: 0, usec: 0 }
      sum.set(name, { calls: t.calls + s.calls, usec: t.usec + s.usec })
    }
  }
  const ops = OPS * slices.length
  return [...sum].sort((a, b) => b[1].usec - a[1].usec)
    .filter(([name]) => name !== 'info')
    .map(([name, s]) => `${name} ${(s.calls / ops).toFixed(2)} × ${(s.usec / s.calls).toFixed(2)} µs`).join(', ')
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

/** One flow of both builds, alternated: the medians, the pairs' differences, each build's commands. */
async function compare (flow: string, [a, b]: Array<(n: number) => Promise<void>>, pid: number | undefined, stats: StatsOf): Promise<void> {
  if (a === undefined || b === undefined) throw new Error('two builds')
  await a(OPS)
  await b(OPS)
  const as: Array<Awaited<ReturnType<typeof cpuPerOp>>> = []
  const bs: typeof as = []
  for (let k = 0; k < PAIRS; k++) {
    if (k % 2 === 0) { as.push(await cpuPerOp(a, pid, stats)); bs.push(await cpuPerOp(b, pid, stats)) } else { bs.push(await cpuPerOp(b, pid, stats)); as.push(await cpuPerOp(a, pid, stats)) }
  }
  for (const [what, i] of [['process', 0], ['Redis', 1], ['Redis scripts', 2]] as const) {
    const [ax, bx] = [as.map((x) => x[i]), bs.map((x) => x[i])]
    const diffs = bx.map((x, j) => x - (ax[j] as number))
    process.stdout.write(`${flow}, ${what}: A ${median(ax).toFixed(1)}, B ${median(bx).toFixed(1)}, B - A median ${median(diffs).toFixed(2)} (pairs: ${diffs.map((d) => d.toFixed(1)).join(' ')})\n`)
  }
  process.stdout.write(`${flow}, commands per call: A ${perCall(as.map((x) => x[3]))}\n${flow}, commands per call: B ${perCall(bs.map((x) => x[3]))}\n`)
}

async function main (): Promise<void> {
  const [first, second = resolve(paths.dist, '..')] = process.argv.slice(2)
  if (first === undefined) throw new Error('usage: bench/flow-ab.ts TREE_A [TREE_B]: each a directory with dist/ built')
  const trees = [resolve(first), resolve(second)]
  const started: Proc[] = []
  try {
    const [redisPort, simPort] = [await freePort(), await freePort()]
    const redis = await startRedis(redisPort)
    started.push(redis)
    const simulator = start('simulator', process.execPath, [join(paths.dist, 'simulator/cli.js')], { PORT: String(simPort), WECHAT_APPID: APPID, WECHAT_SECRET: SECRET })
    started.push(simulator)
    await waitFor(`http://127.0.0.1:${simPort}/sns/jscode2session`, simulator)
    const secret = randomBytes(32).toString('base64url')
    const apps = [await appOf(trees[0] as string, 'a', `redis://127.0.0.1:${redisPort}`, `http://127.0.0.1:${simPort}`, secret),
      await appOf(trees[1] as string, 'b', `redis://127.0.0.1:${redisPort}`, `http://127.0.0.1:${simPort}`, secret)]
    const info = createClient({ url: `redis://127.0.0.1:${redisPort}` })
    await info.connect()
    const stats: StatsOf = async () => commandStatsOf(await info.info('commandstats'))
    process.stdout.write(`A: ${trees[0] as string}\nB: ${trees[1] as string}\nCPU µs per call (this process: the flow; Redis; Redis's scripts), ${PAIRS} pairs of ${OPS} calls each, the order turning each pair\n`)
    for (const flow of flowsAsked) await compare(flow, apps.map((app, i) => runnerOf(app, flow, `${flow}${i}`)), redis.child.pid, stats)
    await info.quit()
    for (const app of apps) await app.close()
  } finally {
    for (const p of started.reverse()) await p.stop()
  }
}

await main()
