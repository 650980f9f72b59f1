// `SCRIPT_READS=1 npm run bench:script`: what reading a user at the session limit costs a script, by
// fragment, on one user as `login-limit` leaves it (the limit of 10 sessions with a device, markers
// past MAX_ENDED trimmed): the pass (`scan`) against the reads an index of session ids would make
// instead (BENCHMARKS.md, "The index lead, measured first"). µs per EVALSHA from INFO commandstats,
// the fragments in turn each round. Knob: READS_ROUNDS (5), READS_CALLS (5000 a fragment a round).
import { createClient } from '@redis/client'
import { lua } from '../lib/store/redis-lua.js'
import { SCRIPTS } from '../lib/store/redis-scripts.js'
import { SID_CHARS } from '../lib/ids.js'
import { BAN_FIELD, sessionField } from '../lib/store/redis-layout.js'

/** A client as bench:script makes it. */
export const clientOf = (url: string) => createClient({ url })
type Redis = ReturnType<typeof clientOf>
const ROUNDS = Number(process.env.READS_ROUNDS ?? 5)
const CALLS = Number(process.env.READS_CALLS ?? 5000)
const KEY = 'reads{u}'

/** Lua for a list of field names. */
const names = (fields: string[]): string => fields.map((f) => `'${f}'`).join(', ')

function fragments (sids: string[]): Record<string, string> {
  const needed = [...sids.flatMap((sid) => [sid, sessionField(sid, 'secret'), sessionField(sid, 'rotation')]), BAN_FIELD]
  return {
    'return 1': 'return 1',
    HGETALL: 'redis.call(\'HGETALL\', KEYS[1]) return 1',
    'the pass (scan)': lua('scan(KEYS[1], nowMs(), true) return 1'),
    HKEYS: 'redis.call(\'HKEYS\', KEYS[1]) return 1',
    HLEN: 'redis.call(\'HLEN\', KEYS[1]) return 1',
    [`HMGET of the ${needed.length} values the limit needs`]: `redis.call('HMGET', KEYS[1], ${names(needed)}) return 1`,
    [`HMGET of the ${sids.length} hot values`]: `redis.call('HMGET', KEYS[1], ${names(sids)}) return 1`,
    [`GET of a ${sids.length * SID_CHARS}-byte string`]: 'redis.call(\'GET\', KEYS[1] .. \'i\') return 1'
  }
}

/** µs per call of `script`, CALLS calls, 50 in flight. */
async function perCall (redis: Redis, sha: string): Promise<number> {
  await redis.configResetStat()
  for (let done = 0; done < CALLS; done += 50) {
    await Promise.all(Array.from({ length: Math.min(50, CALLS - done) }, async () => await redis.evalSha(sha, { keys: [KEY] })))
  }
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await redis.info('commandstats'))
  return Number(m?.[2]) / Number(m?.[1])
}

export async function measureReads (redis: Redis, args: (openid: string) => string[]): Promise<void> {
  const create = await redis.scriptLoad(SCRIPTS.wxauthCreate)
  for (let i = 0; i < 40; i++) await redis.evalSha(create, { keys: [KEY], arguments: args('reader') })
  const sids = (await redis.hKeys(KEY)).filter((f) => f.length === SID_CHARS)
  await redis.set(`${KEY}i`, sids.join(''))
  const shas = await Promise.all(Object.entries(fragments(sids)).map(async ([name, text]) => [name, await redis.scriptLoad(text)] as const))
  const runs = new Map<string, number[]>()
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, sha] of shas) runs.set(name, [...runs.get(name) ?? [], await perCall(redis, sha)])
  }
  process.stdout.write(`Reading a user at the limit (${await redis.hLen(KEY)} fields, ${sids.length} sessions), µs per call, ${ROUNDS} rounds:\n`)
  for (const [name, xs] of runs) process.stdout.write(`  ${name}: ${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}\n`)
}
