// The production store: sessions, refresh-token state, access-token blacklist, login-code markers
// and rate-limit counters in Redis. Every key has a TTL. All of one user lives in one key (so
// "log out everywhere" is one DEL and every script touches one Redis Cluster slot); what must change
// together changes in one Lua script.
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { StoreUnavailableError } from '../errors.js'
import { blacklistField, keyNames } from './redis-layout.js'
import { SID_CHARS } from '../ids.js'
import { disconnectClient, sendCommandOf, type RedisClient } from './redis-client.js'
import { type CodeClaim, type Credential, type RotateResult, type SessionData, type SessionStore, type TokenSubject } from './types.js'

// A user is one hash. Each session is three fields, four once it has rotated, named by its id and a
// suffix, each value at most 64 bytes so that Redis keeps the hash in its compact listpack encoding (a
// longer value turns the whole hash into a hashtable, which costs about twice the memory). Values are
// joined with \x01, which none of them can contain:
//   <sid>   expiresAt ms | current refresh digest [| its generation, when not 0]   (the hot path)
//   <sid>o  openid | unionid
//   <sid>k  session_key | createdAt ms | sub ('' = the openid) | claims JSON
//   <sid>p  rotated at ms | nonce of that rotation                  (once the session has rotated)
// plus `b:<jti>` -> expiresAt ms for each blacklisted access token of the user. A session costs the
// same after any number of refreshes: older refresh tokens are recognised by their mac
// (lib/tokens.ts), not by stored digests. (`<sid>h`, a digest history, was written by earlier builds;
// it goes with its session.)
const SEP = '\u0001'

const LUA_COMMON = `
local SEP = '\\1'
local SID_CHARS = ${SID_CHARS}
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fieldsOf(sid) return sid, sid .. 'o', sid .. 'k', sid .. 'p', sid .. 'h' end
local function dropSession(key, sid) redis.call('HDEL', key, fieldsOf(sid)) end
-- Numbers go to redis.call as integer strings: Redis 7.2.0-7.2.4 turned whole doubles such as
-- 1e9 into '1e+09' (redis/redis#13113), which PEXPIRE refuses and tonumber misreads.
local function int(n) return string.format('%d', n) end
local function keepAlive(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, int(ttl)) end
end
-- Drops the user's expired sessions and blacklist entries.
local function purge(key, now)
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local name = all[i]
    if #name == SID_CHARS or string.sub(name, 1, 2) == 'b:' then
      local exp = tonumber(string.match(all[i + 1], '^(%d+)'))
      if exp and exp <= now then
        if #name == SID_CHARS then dropSession(key, name) else redis.call('HDEL', key, name) end
      end
    end
  end
end
`

const SCRIPTS = {
  // KEYS: user. ARGV: ttlMs, sid, refresh digest, sub ('' = openid), openid, unionid, session_key, claims
  wxauthCreate: LUA_COMMON + `
local now = nowMs()
local ttl = tonumber(ARGV[1])
local sid = ARGV[2]
purge(KEYS[1], now)
redis.call('HSET', KEYS[1],
  sid, int(now + ttl) .. SEP .. ARGV[3],
  sid .. 'o', ARGV[5] .. SEP .. ARGV[6],
  sid .. 'k', ARGV[7] .. SEP .. now .. SEP .. ARGV[4] .. SEP .. ARGV[8])
keepAlive(KEYS[1], ttl)
return 1`,

  // KEYS: user. ARGV: sid, generation, presented digest, next digest, nonce, graceMs, ttlMs, maxAgeMs
  // -> 'invalid' | 'behind' | {'rotated', ttl ms, <sid>o, <sid>k without the session_key}
  //    | {'predecessor', ttl ms, <sid>o, <sid>k without the session_key, nonce, current digest, in grace '1' | '0'}
  // The hot path of every refresh: values are cut with plain string.find, no patterns and no tables.
  wxauthRotate: LUA_COMMON + `
local key, sid = KEYS[1], ARGV[1]
local v = redis.call('HMGET', key, sid, sid .. 'o', sid .. 'k', sid .. 'p')
local hot = v[1]
if not hot then return 'invalid' end
local now = nowMs()
local a = string.find(hot, SEP, 1, true)
local expiresAt = tonumber(string.sub(hot, 1, a - 1))
if expiresAt <= now then
  dropSession(key, sid)
  return 'invalid'
end
-- A session that never rotated stores no generation (32 bytes less per session in Redis' allocator).
local current, generation = string.sub(hot, a + 1), 0
local b = string.find(hot, SEP, a + 1, true)
if b then current, generation = string.sub(hot, a + 1, b - 1), tonumber(string.match(string.sub(hot, b + 1), '^%d+$')) end
-- A value this version did not write (a development build's layout): refused, never a script error.
if not generation then return 'invalid' end
local presented = tonumber(ARGV[2])
-- <sid>k is session_key | createdAt | sub | claims: only what follows the session_key leaves Redis.
local k = v[3] or ''
local ks = string.find(k, SEP, 1, true)
local public = ks and string.sub(k, ks + 1) or ''
if presented == generation and ARGV[3] == current then
  local createdAt = tonumber(string.sub(public, 1, string.find(public, SEP, 1, true) - 1))
  local ttl = math.min(tonumber(ARGV[7]), createdAt + tonumber(ARGV[8]) - now)
  if ttl <= 0 then
    dropSession(key, sid)
    return 'invalid'
  end
  redis.call('HSET', key, sid, int(now + ttl) .. SEP .. ARGV[4] .. SEP .. int(generation + 1), sid .. 'p', int(now) .. SEP .. ARGV[5])
  keepAlive(key, ttl)
  return {'rotated', int(ttl), v[2] or '', public}
end
if presented == generation - 1 then
  local p = v[4] or ''
  local c = string.find(p, SEP, 1, true)
  local rotatedAt = c and tonumber(string.match(string.sub(p, 1, c - 1), '^%d+$'))
  if not rotatedAt then return 'invalid' end
  local inGrace = now - rotatedAt <= tonumber(ARGV[6])
  return {'predecessor', int(expiresAt - now), v[2] or '', public, string.sub(p, c + 1), current, inGrace and '1' or '0'}
end
if presented < generation - 1 then return 'behind' end
return 'invalid'`,

  // KEYS: user. ARGV: sid
  wxauthRevoke: LUA_COMMON + `
dropSession(KEYS[1], ARGV[1])
return 1`,

  // KEYS: user. ARGV: sid, blacklist field, ttlMs. Only a live session's tokens need blacklisting.
  wxauthBlacklist: LUA_COMMON + `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], int(nowMs() + tonumber(ARGV[3])))
keepAlive(KEYS[1], tonumber(ARGV[3]))
return 1`,

  // KEYS: user. -> how many live sessions ended
  wxauthRevokeUser: LUA_COMMON + `
local now, n = nowMs(), 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if #all[i] == SID_CHARS and tonumber(string.match(all[i + 1], '^(%d+)')) > now then n = n + 1 end
end
redis.call('DEL', KEYS[1])
return n`,

  // KEYS: credential, lock. ARGV: packed credential, ttlMs, owner
  wxauthSaveCredential: `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1`,

  // KEYS: lock. ARGV: owner
  wxauthUnlock: `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`,

  // KEYS: counter. ARGV: windowMs. -> {hits in the window, ms left in it}
  wxauthHit: `
local c = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if c == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {c, ttl}`
} as const

type ScriptName = keyof typeof SCRIPTS
// Run by EVALSHA; after a Redis restart (NOSCRIPT) by EVAL, which loads the script again.
const SCRIPT_SHAS = Object.fromEntries(Object.entries(SCRIPTS).map(([name, lua]) =>
  [name, createHash('sha1').update(lua).digest('hex')])) as Record<ScriptName, string>
const isNoScript = (err: unknown): boolean => err instanceof Error && err.message.startsWith('NOSCRIPT')

export interface RedisStoreOptions {
  client: RedisClient
  keyPrefix: string
  /** Upper bound on one operation; past it the operation fails with STORE_UNAVAILABLE. */
  timeoutMs: number
  /** Whether close() should disconnect the client (true only when the store created it). */
  ownsClient: boolean
}

/** A packed session's expiry (ms), read without unpacking the rest. */
const expiryOf = (packed: string): number => Number(packed.slice(0, packed.indexOf(SEP)))

export function createRedisStore (opts: RedisStoreOptions): SessionStore {
  const { client, timeoutMs } = opts
  const keys = keyNames(opts.keyPrefix)
  const send = sendCommandOf(client)
  const run = async (name: ScriptName, keyList: string[], ...args: Array<string | number>): Promise<unknown> => {
    const command = ['EVALSHA', SCRIPT_SHAS[name], String(keyList.length), ...keyList, ...args.map(String)]
    try {
      return await send(keyList[0], command)
    } catch (err) {
      if (!isNoScript(err)) throw err
      // The failed command is over: the same arguments go again, with the script's text.
      command[0] = 'EVAL'
      command[1] = SCRIPTS[name]
      return await send(keyList[0], command)
    }
  }

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
   * cause that keeps only the message: client errors may carry the command and its arguments
   * (ioredis attaches them; session_key is among them), and a logged error must not.
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

  return {
    kind: 'redis',

    async ping () {
      const answer = await guard(async () => await send(undefined, ['PING']))
      // A client that answers anything else (a callback-style wrapper answers undefined) is not usable.
      if (answer !== 'PONG') throw new StoreUnavailableError({ cause: new Error(`PING answered ${String(answer)}`) })
    },

    async claimCode (codeId, pendingTtlMs) {
      const key = keys.code(codeId)
      return await guard(async (): Promise<CodeClaim> => {
        for (let attempt = 0; attempt < 2; attempt++) {
          if (await send(key, ['SET', key, 'p', 'PX', String(pendingTtlMs), 'NX']) === 'OK') return 'claimed'
          const v = await send(key, ['GET', key])
          if (v !== null) return v === 'u' ? 'used' : 'pending'
        }
        return 'pending' // claimed and released in between, twice: treat as in use
      })
    },

    async settleCode (codeId, accepted, usedTtlMs) {
      await guard(async () => {
        const key = keys.code(codeId)
        await send(key, accepted ? ['SET', key, 'u', 'PX', String(usedTtlMs)] : ['DEL', key])
      })
    },

    async createSession (ref, data, refreshHash, ttlSec) {
      await guard(async () => await run('wxauthCreate', [keys.user(ref.tag)], ttlSec * 1000, ref.sid, refreshHash,
        data.sub === data.openid ? '' : data.sub, data.openid, data.unionid ?? '', data.sessionKey,
        data.claims === undefined ? '' : JSON.stringify(data.claims)))
    },

    async getSession (ref) {
      const key = keys.user(ref.tag)
      const [hot, o, k] = await guard(async () => await send(key, ['HMGET', key, ref.sid, `${ref.sid}o`, `${ref.sid}k`])) as Array<string | null>
      if (typeof hot !== 'string' || expiryOf(hot) <= Date.now()) return null
      const [openid, unionid] = (o ?? '').split(SEP)
      const [sessionKey, createdAt, sub, claims] = (k ?? '').split(SEP)
      return decodeData([sub === '' ? openid : sub, openid, unionid, sessionKey, claims, createdAt].map((x) => x ?? null))
    },

    async rotateRefresh (ref, input): Promise<RotateResult> {
      const reply = await guard(async () => await run('wxauthRotate', [keys.user(ref.tag)],
        ref.sid, input.generation, input.presentedHash, input.nextHash, input.nonce, input.graceMs,
        input.ttlSec * 1000, input.maxAgeSec * 1000))
      if (!Array.isArray(reply)) return { status: reply === 'behind' ? 'behind' : 'invalid' }
      // status, ttl ms, the stored values (openid | unionid, and createdAt | sub | claims), then for
      // a predecessor: the last rotation's nonce, the current digest, whether in the grace window
      const [status, ttl, o, k, nonce, currentHash, inGrace] = reply as string[]
      const [openid = '', unionid = ''] = (o ?? '').split(SEP, 2)
      const [, sub = '', claims = ''] = (k ?? '').split(SEP, 3)
      const session: TokenSubject = { sub: sub === '' ? openid : sub, openid }
      if (unionid !== '') session.unionid = unionid
      if (claims !== '') session.claims = JSON.parse(claims) as Record<string, unknown>
      return status === 'rotated'
        ? { status, session, ttlMs: Number(ttl) }
        : { status: 'predecessor', session, ttlMs: Number(ttl), nonce: nonce ?? '', currentHash: currentHash ?? '', inGrace: inGrace === '1' }
    },

    // The hot path: one plain HMGET, no script. Expiry is compared with this process's clock.
    async checkAccess (ref, jti) {
      const key = keys.user(ref.tag)
      const [packed, banned] = await guard(async () => await send(key, ['HMGET', key, ref.sid, blacklistField(jti)])) as Array<string | null>
      return typeof packed === 'string' && banned === null && expiryOf(packed) > Date.now() ? 'ok' : 'revoked'
    },

    async revokeSession (ref) {
      await guard(async () => await run('wxauthRevoke', [keys.user(ref.tag)], ref.sid))
    },

    async revokeUser (tag) {
      return Number(await guard(async () => await run('wxauthRevokeUser', [keys.user(tag)])))
    },

    async blacklist (ref, jti, ttlSec) {
      await guard(async () => await run('wxauthBlacklist', [keys.user(ref.tag)], ref.sid, blacklistField(jti), Math.max(1, ttlSec) * 1000))
    },

    async hit (key, windowMs) {
      const [current, ttl] = await guard(async () => await run('wxauthHit', [keys.rateLimit + key], windowMs)) as [number, number]
      return { current: Number(current), ttlMs: Number(ttl) }
    },

    async getCredential (name) {
      const key = keys.credential(name)
      const packed = await guard(async () => await send(key, ['GET', key]))
      if (typeof packed !== 'string') return null
      const [expiresAt, refreshAt] = packed.split(SEP, 2).map(Number)
      const value = packed.slice(packed.indexOf(SEP, packed.indexOf(SEP) + 1) + 1)
      if (expiresAt === undefined || refreshAt === undefined || !(expiresAt > Date.now())) return null
      return { value, expiresAt, refreshAt }
    },

    async lockCredential (name, owner, ttlMs) {
      const key = keys.credentialLock(name)
      return await guard(async () => await send(key, ['SET', key, owner, 'PX', String(ttlMs), 'NX']) === 'OK')
    },

    async saveCredential (name, credential: Credential, owner) {
      const ttlMs = credential.expiresAt - Date.now()
      if (ttlMs <= 0) return
      await guard(async () => await run('wxauthSaveCredential', [keys.credential(name), keys.credentialLock(name)],
        `${credential.expiresAt}${SEP}${credential.refreshAt}${SEP}${credential.value}`, ttlMs, owner))
    },

    async unlockCredential (name, owner) {
      await guard(async () => await run('wxauthUnlock', [keys.credentialLock(name)], owner))
    },

    async close () {
      if (opts.ownsClient) {
        // Operations in flight get until their deadline (the sweeper still runs), then the
        // connection is dropped: a Redis that hangs cannot hold the process open.
        const until = Date.now() + timeoutMs
        while (pending.size > 0 && Date.now() < until) await sleep(5)
        disconnectClient(client)
      }
      clearInterval(sweeper)
    }
  }
}

/** sub, openid, unionid, session_key, claims, createdAt -> SessionData */
function decodeData (v: Array<string | null>): SessionData {
  const [sub, openid, unionid, sessionKey, claims, createdAt] = v.map((x) => x ?? '')
  const data: SessionData = { sub: sub ?? '', openid: openid ?? '', sessionKey: sessionKey ?? '', createdAt: Number(createdAt) }
  if (unionid !== undefined && unionid !== '') data.unionid = unionid
  if (claims !== undefined && claims !== '') data.claims = JSON.parse(claims) as Record<string, unknown>
  return data
}
