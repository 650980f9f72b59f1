// `npm run bench:script -- [OTHER_TREE]`: Redis's time per run of the script that opens a session
// (wxauthCreate), for users in three states, measured with INFO commandstats on a bare redis-server
// (only the script's own time: no network, no client). With OTHER_TREE (a tree with `dist/` built, a
// `git worktree` of another commit), its script is measured too, the two in turn in every pair, each on
// users of its own. The states, by logins per user: below the limit (users of 2 sessions logging in 5
// times more), crossing it (10, then 2 more) and long at it (40, then 40 more: markers trimmed, and an
// older script without a limit meets a hash that grew). An older script takes the arguments it knows
// (the first eight are the same in every version) and leaves the rest.
// A tree whose scripts are a library of functions too (redis-functions.ts) is measured both ways, by
// EVALSHA (how a Redis without functions gets it) and by FCALL (the gateway's way on Redis 7).
// Knobs: SCRIPT_USERS (2000), SCRIPT_PAIRS (3); SCRIPT_READS=1 measures instead what reading a user at
// the limit costs a script, by fragment (script-reads.ts).
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { paths } from './paths.js'
import { freePort, startRedis } from './processes.js'
import { clientOf, measureReads } from './script-reads.js'

const USERS = Number(process.env.SCRIPT_USERS ?? 2000)
const PAIRS = Number(process.env.SCRIPT_PAIRS ?? 3)
const STATES = [
  { name: 'below the limit (2 sessions, 5 more logins)', warm: 2, measured: 5 },
  { name: 'crossing the limit of 10 (the 11th and 12th login)', warm: 10, measured: 2 },
  { name: 'long at the limit (40 logins, 40 more)', warm: 40, measured: 40 }
]

type Redis = ReturnType<typeof clientOf>

/** The arguments of one login as the gateway sends them (lib/store/redis-sessions.ts), a device included. */
const argsOf = (openid: string): string[] => [String(7 * 86_400_000), randomBytes(9).toString('base64url'),
  randomBytes(16).toString('base64url'), '', openid, '', randomBytes(16).toString('base64'), '',
  'mp', 'iPhone 15', '10.0.0.1', 'Mozilla/5.0 MicroMessenger', '', '10', '900000', '0', '']

/** One way to run one tree's script: its label, and a login of the user at `key`. */
interface Way { label: string, call: (key: string, args: string[]) => Promise<unknown> }

/** Logs every user of `prefix` in `times` times, 20 logins a user at once at most. */
async function logins (way: Way, prefix: string, times: number): Promise<void> {
  for (let done = 0; done < times; done += 20) {
    const batch: Array<Promise<unknown>> = []
    for (let u = 0; u < USERS; u++) {
      for (let i = done; i < Math.min(times, done + 20); i++) batch.push(way.call(`${prefix}{u${u}}`, argsOf(`o${u}`)))
    }
    await Promise.all(batch)
  }
}

/** µs of Redis per script run over the measured logins of one state, on fresh users. */
async function measure (redis: Redis, way: Way, prefix: string, state: typeof STATES[number]): Promise<number> {
  await logins(way, prefix, state.warm)
  await redis.configResetStat()
  await logins(way, prefix, state.measured)
  const m = /cmdstat_(?:evalsha|fcall):calls=(\d+),usec=(\d+)/.exec(await redis.info('commandstats'))
  return Number(m?.[2]) / Number(m?.[1])
}

/** The ways to run each tree's wxauthCreate: by EVALSHA, and by FCALL where the tree has a library (loaded here). */
async function waysOf (redis: Redis, trees: string[]): Promise<Way[]> {
  const ways: Way[] = []
  for (const tree of trees) {
    const module = async <T>(name: string): Promise<T> => await import(pathToFileURL(join(tree, `dist/lib/store/${name}.js`)).href) as T
    const { SCRIPTS } = await module<{ SCRIPTS: { wxauthCreate: string } }>('redis-scripts')
    const sha = await redis.scriptLoad(SCRIPTS.wxauthCreate)
    ways.push({ label: `${tree} (EVALSHA)`, call: async (key, args) => await redis.evalSha(sha, { keys: [key], arguments: args }) })
    const library = await module<{ LIBRARY: string, FUNCTION_NAMES: { wxauthCreate: string } }>('redis-functions').catch(() => null)
    if (library === null) continue
    await redis.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', library.LIBRARY])
    const name = library.FUNCTION_NAMES.wxauthCreate
    ways.push({ label: `${tree} (FCALL)`, call: async (key, args) => await redis.sendCommand(['FCALL', name, '1', key, ...args]) })
  }
  return ways
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

async function main (): Promise<void> {
  const trees = [resolve(paths.dist, '..'), ...process.argv.slice(2).map((t) => resolve(t))]
  const port = await freePort()
  const server = await startRedis(port)
  const redis = clientOf(`redis://127.0.0.1:${port}`)
  try {
    await redis.connect()
    if (process.env.SCRIPT_READS === '1') {
      await measureReads(redis, argsOf)
      return
    }
    const ways = await waysOf(redis, trees)
    process.stdout.write(`Redis µs per wxauthCreate (INFO commandstats), ${USERS} users a state, ${PAIRS} pair(s), the order turning each pair\n`)
    for (const [s, state] of STATES.entries()) {
      const runs: number[][] = ways.map(() => [])
      for (let k = 0; k < PAIRS; k++) {
        const order = k % 2 === 0 ? ways.map((_, i) => i) : ways.map((_, i) => i).reverse()
        for (const i of order) (runs[i] as number[]).push(await measure(redis, ways[i] as Way, `cs${s}:${k}:${i}:`, state))
        await redis.flushAll()
      }
      process.stdout.write(`${state.name}:\n`)
      for (const [i, way] of ways.entries()) process.stdout.write(`  ${way.label}: ${median(runs[i] as number[]).toFixed(1)} µs (${(runs[i] as number[]).map((x) => x.toFixed(1)).join(', ')})\n`)
    }
  } finally {
    if (redis.isOpen) await redis.quit()
    await server.stop()
  }
}

await main()
