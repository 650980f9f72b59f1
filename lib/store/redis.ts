// The production store: sessions, refresh-token state, per-user index, access-token blacklist and
// login-code markers in Redis. Every key has a TTL; keys that change together change in one Lua
// script; one user's keys share a hash tag, so the same code runs on Redis Cluster.
import { Redis, Cluster } from 'ioredis'
import { StoreUnavailableError } from '../errors.js'
import { keyNames } from '../keys.js'
import { REFRESH_HISTORY, type CodeClaim, type NewSession, type RotateResult, type SessionData, type SessionStore } from './types.js'

export type RedisClient = Redis | Cluster

// Session hash fields, short on purpose: they are stored once per session.
const DATA_FIELDS = ['sub', 'o', 'u', 'k', 'c', 't'] as const

const LUA_DATA = `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function data(s)
  local v = redis.call('HMGET', s, 'sub', 'o', 'u', 'k', 'c', 't')
  for i = 1, 6 do v[i] = v[i] or '' end
  return v
end
local function extendIndex(idx, sid, expAt, ttl)
  redis.call('ZADD', idx, expAt, sid)
  if redis.call('PTTL', idx) < ttl then redis.call('PEXPIRE', idx, ttl) end
end
`

const SCRIPTS = {
  // KEYS: code. ARGV: pendingTtlMs. -> 'c' (claimed), 'p' (pending) or 'u' (used)
  wxauthClaimCode: `
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], 'p', 'PX', ARGV[1])
return 'c'`,

  // KEYS: session, index. ARGV: ttlMs, sid, field, value, ...
  wxauthCreate: LUA_DATA + `
local ttl = tonumber(ARGV[1])
local now = nowMs()
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 't', now, unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
extendIndex(KEYS[2], ARGV[2], now + ttl, ttl)
return 1`,

  // KEYS: session, index. ARGV: presented, next, sealed, graceMs, ttlMs, sid, historyMax, maxAgeMs
  wxauthRotate: LUA_DATA + `
local s = KEYS[1]
local f = redis.call('HMGET', s, 'r', 'p', 'pt', 'g', 'h', 't')
if not f[1] then return {'invalid'} end
local presented = ARGV[1]
local now = nowMs()
if presented == f[1] then
  local ttl = math.min(tonumber(ARGV[5]), (tonumber(f[6]) or now) + tonumber(ARGV[8]) - now)
  if ttl <= 0 then
    redis.call('DEL', s)
    redis.call('ZREM', KEYS[2], ARGV[6])
    return {'invalid'}
  end
  local words = {}
  if f[2] then words[1] = f[2] end
  for w in string.gmatch(f[5] or '', '%S+') do
    if #words < tonumber(ARGV[7]) then words[#words + 1] = w end
  end
  redis.call('HSET', s, 'r', ARGV[2], 'p', presented, 'pt', now, 'g', ARGV[3], 'h', table.concat(words, ' '))
  redis.call('PEXPIRE', s, ttl)
  extendIndex(KEYS[2], ARGV[6], now + ttl, ttl)
  return {'rotated', ttl, '', unpack(data(s))}
end
if f[2] and presented == f[2] and f[4] and now - tonumber(f[3]) <= tonumber(ARGV[4]) then
  return {'grace', redis.call('PTTL', s), f[4], unpack(data(s))}
end
if (f[2] and presented == f[2]) or string.find(' ' .. (f[5] or '') .. ' ', ' ' .. presented .. ' ', 1, true) then
  redis.call('DEL', s)
  redis.call('ZREM', KEYS[2], ARGV[6])
  return {'reused'}
end
return {'invalid'}`,

  // KEYS: blacklist entry, session. -> 1 when the token may be used
  wxauthCheck: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return redis.call('EXISTS', KEYS[2])`,

  // KEYS: session, index[, blacklist entry]. ARGV: sid, jtiTtlMs
  wxauthRevoke: `
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if KEYS[3] then redis.call('SET', KEYS[3], '1', 'PX', ARGV[2]) end
return 1`,

  // KEYS: counter. ARGV: windowMs. -> {hits in the window, ms left in it}
  wxauthHit: `
local c = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if c == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {c, ttl}`,

  // KEYS: index[, blacklist entry]. ARGV: session key prefix, jtiTtlMs
  // The session keys are derived from the index rather than declared: they share its hash tag,
  // so they live in the same cluster slot.
  wxauthRevokeUser: `
local n = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('DEL', ARGV[1] .. sid)
end
redis.call('DEL', KEYS[1])
if KEYS[2] then redis.call('SET', KEYS[2], '1', 'PX', ARGV[2]) end
return n`
} as const

type ScriptName = keyof typeof SCRIPTS
type ScriptFn = (numKeys: number, ...args: Array<string | number>) => Promise<unknown>

export interface RedisStoreOptions {
  client: RedisClient
  keyPrefix: string
  /** Upper bound on one operation; past it the operation fails with STORE_UNAVAILABLE. */
  timeoutMs: number
  /** Whether close() should quit the client (true only when the store created it). */
  ownsClient: boolean
}

export function createRedisStore (opts: RedisStoreOptions): SessionStore {
  const { client, timeoutMs } = opts
  const keys = keyNames(opts.keyPrefix)
  // ioredis prefixes KEYS with a host client's keyPrefix but not ARGV: key names built inside a
  // script (revokeUser) must add it themselves.
  const clientKeyPrefix = (client.options as { keyPrefix?: string }).keyPrefix ?? ''

  for (const [name, lua] of Object.entries(SCRIPTS)) {
    if (!(name in client)) client.defineCommand(name, { lua })
  }
  // defineCommand adds methods ioredis cannot type; this is the one place they are looked up.
  const commands = client as unknown as Record<ScriptName, ScriptFn>
  const run = async (name: ScriptName, keyList: string[], ...args: Array<string | number>): Promise<unknown> =>
    await commands[name](keyList.length, ...keyList, ...args)

  // Deadlines without a timer per operation (a timer each cost ~8% of throughput): pending
  // operations are swept by one interval, so a deadline fires within timeoutMs + timeoutMs / 10.
  const pending = new Set<{ startedAt: number, fail: (err: Error) => void }>()
  const sweeper = setInterval(() => {
    const now = Date.now()
    for (const p of pending) {
      if (now - p.startedAt >= timeoutMs) {
        pending.delete(p)
        p.fail(new StoreUnavailableError({ cause: new Error(`redis operation exceeded ${timeoutMs} ms`) }))
      }
    }
  }, Math.max(5, Math.floor(timeoutMs / 10)))
  sweeper.unref()

  /**
   * Runs a store operation within the deadline. Every failure becomes STORE_UNAVAILABLE with a
   * cause that keeps only the message: ioredis attaches the command and its arguments (session_key
   * among them) to its errors, and a logged error must not carry them.
   */
  async function guard<T> (op: () => Promise<T>): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      const entry = { startedAt: Date.now(), fail: reject }
      pending.add(entry)
      op().then((value) => {
        if (pending.delete(entry)) resolve(value)
      }, (err: Error) => {
        if (pending.delete(entry)) reject(new StoreUnavailableError({ cause: new Error(`${err.name}: ${err.message}`) }))
      })
    })
  }

  const blacklistKeys = (tag: string, jti?: string): string[] => (jti === undefined ? [] : [keys.blacklist(tag, jti)])
  const ttlMs = (sec?: number): number => Math.max(1, sec ?? 1) * 1000

  return {
    kind: 'redis',

    async ping () {
      await guard(async () => { await client.ping() })
    },

    async claimCode (codeId, pendingTtlMs) {
      const v = await guard(async () => await run('wxauthClaimCode', [keys.code(codeId)], pendingTtlMs))
      return v === 'c' ? 'claimed' : v === 'u' ? 'used' : 'pending' satisfies CodeClaim
    },

    async settleCode (codeId, accepted, usedTtlMs) {
      await guard(async () => {
        if (accepted) await client.set(keys.code(codeId), 'u', 'PX', usedTtlMs)
        else await client.del(keys.code(codeId))
      })
    },

    async createSession (ref, data, refreshHash, ttlSec) {
      const fields = encodeData(data)
      fields.push('r', refreshHash)
      await guard(async () => await run('wxauthCreate', [keys.session(ref.tag, ref.sid), keys.userIndex(ref.tag)],
        ttlSec * 1000, ref.sid, ...fields))
    },

    async getSession (ref) {
      const v = await guard(async () => await client.hmget(keys.session(ref.tag, ref.sid), ...DATA_FIELDS))
      return v[0] === null ? null : decodeData(v)
    },

    async rotateRefresh (ref, input): Promise<RotateResult> {
      const reply = await guard(async () => await run('wxauthRotate',
        [keys.session(ref.tag, ref.sid), keys.userIndex(ref.tag)],
        input.presentedHash, input.nextHash, input.sealedSuccessor, input.graceMs,
        input.ttlSec * 1000, ref.sid, REFRESH_HISTORY, input.maxAgeSec * 1000)) as Array<string | number | null>
      const status = reply[0]
      if (status === 'rotated' || status === 'grace') {
        const session = decodeData(reply.slice(3) as Array<string | null>)
        const ttl = Number(reply[1])
        return status === 'rotated'
          ? { status, session, ttlMs: ttl }
          : { status, session, ttlMs: ttl, sealedSuccessor: String(reply[2]) }
      }
      return { status: status === 'reused' ? 'reused' : 'invalid' }
    },

    async checkAccess (ref, jti) {
      const ok = await guard(async () => await run('wxauthCheck', [keys.blacklist(ref.tag, jti), keys.session(ref.tag, ref.sid)]))
      return ok === 1 ? 'ok' : 'revoked'
    },

    async revokeSession (ref, jti, jtiTtlSec) {
      await guard(async () => await run('wxauthRevoke',
        [keys.session(ref.tag, ref.sid), keys.userIndex(ref.tag), ...blacklistKeys(ref.tag, jti)],
        ref.sid, ttlMs(jtiTtlSec)))
    },

    async revokeUser (tag, jti, jtiTtlSec) {
      const n = await guard(async () => await run('wxauthRevokeUser',
        [keys.userIndex(tag), ...blacklistKeys(tag, jti)], clientKeyPrefix + keys.sessionPrefix(tag), ttlMs(jtiTtlSec)))
      return Number(n)
    },

    async blacklist (tag, jti, ttlSec) {
      await guard(async () => { await client.set(keys.blacklist(tag, jti), '1', 'PX', ttlMs(ttlSec)) })
    },

    async hit (key, windowMs) {
      const [current, ttl] = await guard(async () => await run('wxauthHit', [keys.rateLimit + key], windowMs)) as [number, number]
      return { current: Number(current), ttlMs: Number(ttl) }
    },

    async close () {
      clearInterval(sweeper)
      if (!opts.ownsClient) return
      // quit() waits for a reply that a dead server never sends; fall back to a hard disconnect.
      await Promise.race([client.quit().catch(() => {}), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())])
      client.disconnect()
    }
  }
}

function encodeData (d: NewSession): string[] {
  return ['sub', d.sub, 'o', d.openid, 'u', d.unionid ?? '', 'k', d.sessionKey,
    'c', d.claims === undefined ? '' : JSON.stringify(d.claims)]
}

function decodeData (v: Array<string | null>): SessionData {
  const [sub, openid, unionid, sessionKey, claims, createdAt] = v.map((x) => x ?? '')
  const data: SessionData = { sub: sub ?? '', openid: openid ?? '', sessionKey: sessionKey ?? '', createdAt: Number(createdAt) }
  if (unionid !== undefined && unionid !== '') data.unionid = unionid
  if (claims !== undefined && claims !== '') data.claims = JSON.parse(claims) as Record<string, unknown>
  return data
}

export interface ConnectOptions {
  url: string
  timeoutMs: number
}

/**
 * A client tuned for a login gateway: no offline queue and one retry per command, so an outage
 * fails requests fast instead of queueing them; unlimited reconnects so it recovers by itself.
 * Resolves once connected; rejects (and closes the client) if Redis does not answer in time.
 */
export async function connectRedis (opts: ConnectOptions): Promise<Redis> {
  const client = new Redis(opts.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: opts.timeoutMs,
    commandTimeout: opts.timeoutMs,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(times * 100, 2000)
  })
  // Without a listener ioredis prints every reconnect error; the store reports outages per request.
  client.on('error', () => {})
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.connect(),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs * 3)
      })
    ])
    return client
  } catch (err) {
    client.disconnect()
    throw new Error(`REDIS_URL: cannot connect to Redis (${(err as Error).message})`, { cause: err })
  } finally {
    clearTimeout(timer)
  }
}
