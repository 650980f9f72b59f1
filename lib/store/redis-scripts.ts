// The Lua scripts of the Redis store: what must change together changes in one script, on one key
// (one Cluster slot). Field names and packed values come from LUA_LAYOUT (redis-layout.ts). Each
// script names its KEYS and ARGV as locals at the top.
import { createHash } from 'node:crypto'
import { LUA_LAYOUT } from './redis-layout.js'

const LUA_COMMON = LUA_LAYOUT + `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function dropSession(key, sid) redis.call('HDEL', key, fieldsOf(sid)) end
-- Numbers go to redis.call as integer strings: Redis 7.2.0-7.2.4 turned whole doubles such as
-- 1e9 into '1e+09' (redis/redis#13113), which PEXPIRE refuses and tonumber misreads.
local function int(n) return string.format('%d', n) end
local function keepAlive(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, int(ttl)) end
end
local function isSession(name) return #name == SID_CHARS end
local function isBlacklisted(name) return string.sub(name, 1, #BLACKLIST_PREFIX) == BLACKLIST_PREFIX end
local function isEnded(name) return #name == SID_CHARS + #ENDED_SUFFIX and string.sub(name, -#ENDED_SUFFIX) == ENDED_SUFFIX end
-- The expiry (ms) a session's hot value, a blacklist entry or an ended marker starts with.
local function expiryOf(v) return tonumber(string.match(v, '^(%d+)')) end
-- One pass over the user: drops what expired, and lists the live sessions (device type, last
-- activity, expiry) and the ended markers kept.
local function scan(key, now)
  local all = redis.call('HGETALL', key)
  local values = {}
  for i = 1, #all, 2 do values[all[i]] = all[i + 1] end
  local live, ended = {}, {}
  for i = 1, #all, 2 do
    local name = all[i]
    if isSession(name) or isBlacklisted(name) or isEnded(name) then
      local exp = expiryOf(all[i + 1])
      if not exp or exp <= now then
        if isSession(name) then dropSession(key, name) else redis.call('HDEL', key, name) end
      elseif isSession(name) then
        local deviceType = unpack_device(values[deviceField(name)])
        local _, createdAt = unpack_secret(values[secretField(name)])
        local rotatedAt = unpack_rotation(values[rotationField(name)])
        live[#live + 1] = { sid = name, type = deviceType, expiresAt = exp,
          active = math.max(tonumber(createdAt) or 0, tonumber(rotatedAt) or 0) }
      elseif isEnded(name) then
        local _, _, endedAt = unpack_ended(all[i + 1])
        ended[#ended + 1] = { name = name, at = tonumber(endedAt) or 0 }
      end
    end
  end
  return live, ended
end
-- Ends a session another login replaces: its tokens will be told why, until the last could be presented.
local function endSession(key, s, reason, by, now, accessTtlMs)
  dropSession(key, s.sid)
  redis.call('HSET', key, endedField(s.sid), pack_ended(int(math.max(s.expiresAt, now + accessTtlMs)), reason, int(now), by))
end
-- Why a session is gone, if another login ended it: {reason, endedAt, by}, or nil.
local function endOf(key, sid, now)
  local marker = redis.call('HGET', key, endedField(sid))
  if not marker then return nil end
  local exp, reason, endedAt, by = unpack_ended(marker)
  if (tonumber(exp) or 0) <= now then return nil end
  return {'ended', reason, endedAt, by}
end
`

export const SCRIPTS = {
  // -> {'created', sessions ended} | {'refused', device type}
  wxauthCreate: LUA_COMMON + `
local key = KEYS[1]
local ttl, sid, refreshDigest, sub, openid, unionid, sessionKey, claims =
  tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local deviceType, deviceName, ip, userAgent, exclusive, maxSessions, accessTtlMs =
  ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], tonumber(ARGV[14]), tonumber(ARGV[15])
local now = nowMs()
local live, ended = scan(key, now)
local kept, count = {}, 0
for _, s in ipairs(live) do
  if exclusive == 'refuse' and s.type == deviceType then return {'refused', deviceType} end
  if exclusive == 'all' or (exclusive == 'same' and s.type == deviceType) then
    endSession(key, s, 'replaced', deviceType, now, accessTtlMs)
    count = count + 1
  else
    kept[#kept + 1] = s
  end
end
-- The session limit: the least recently refreshed go first.
if #kept >= maxSessions then
  table.sort(kept, function (a, b) return a.active < b.active end)
  for i = 1, #kept - maxSessions + 1 do
    endSession(key, kept[i], 'limit', deviceType, now, accessTtlMs)
    count = count + 1
  end
end
-- Markers are bounded too: the oldest are forgotten (their tokens then get the generic code).
if #ended + count > MAX_ENDED then
  table.sort(ended, function (a, b) return a.at < b.at end)
  for i = 1, math.min(#ended, #ended + count - MAX_ENDED) do redis.call('HDEL', key, ended[i].name) end
end
redis.call('HSET', key,
  hotField(sid), pack_hot(int(now + ttl), refreshDigest, '0'),
  identityField(sid), pack_identity(openid, unionid),
  secretField(sid), pack_secret(sessionKey, int(now), storedSub(sub, openid), claims))
if deviceType ~= '' then redis.call('HSET', key, deviceField(sid), pack_device(deviceType, deviceName, ip, userAgent)) end
keepAlive(key, ttl)
return {'created', count}`,

  // -> 'invalid' | 'behind' | {'ended', reason, ended at, by} | {'rotated', ttl ms, openid, unionid, sub, claims}
  //    | {'predecessor', ttl ms, openid, unionid, sub, claims, nonce, current digest, in grace '1' | '0'}
  // Never the session_key. The hot path of every refresh: values are cut with plain string.find.
  wxauthRotate: LUA_COMMON + `
local key = KEYS[1]
local sid, presented, presentedDigest, nextDigest, nonce, graceMs, ttlMs, maxAgeMs =
  ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local v = redis.call('HMGET', key, hotField(sid), identityField(sid), secretField(sid), rotationField(sid))
local now = nowMs()
if not v[1] then return endOf(key, sid, now) or 'invalid' end
local expiresAt, current, generation, extra = unpack_hot(v[1])
expiresAt = tonumber(expiresAt)
-- A session that never rotated stores no generation. A value this version did not write is refused, never a script error.
if generation == '' then generation = 0 else generation = tonumber(string.match(generation, '^%d+$')) end
if not generation or extra ~= '' then return 'invalid' end
if not expiresAt or expiresAt <= now then
  dropSession(key, sid)
  return 'invalid'
end
local openid, unionid = unpack_identity(v[2])
local _, createdAt, sub, claims = unpack_secret(v[3])
sub = subOf(sub, openid)
if presented == generation and presentedDigest == current then
  local ttl = math.min(ttlMs, tonumber(createdAt) + maxAgeMs - now)
  if ttl <= 0 then
    dropSession(key, sid)
    return 'invalid'
  end
  redis.call('HSET', key, hotField(sid), pack_hot(int(now + ttl), nextDigest, int(generation + 1)),
    rotationField(sid), pack_rotation(int(now), nonce))
  keepAlive(key, ttl)
  return {'rotated', int(ttl), openid, unionid, sub, claims}
end
if presented == generation - 1 then
  local rotatedAt, lastNonce = unpack_rotation(v[4])
  rotatedAt = tonumber(string.match(rotatedAt, '^%d+$'))
  if not rotatedAt then return 'invalid' end
  local inGrace = now - rotatedAt <= graceMs
  return {'predecessor', int(expiresAt - now), openid, unionid, sub, claims, lastNonce, current, inGrace and '1' or '0'}
end
if presented < generation - 1 then return 'behind' end
return 'invalid'`,

  wxauthRevoke: LUA_COMMON + `
local key, sid = KEYS[1], ARGV[1]
dropSession(key, sid)
return 1`,

  // Only a live session's tokens need blacklisting.
  wxauthBlacklist: LUA_COMMON + `
local key, sid, jti, ttlMs = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('HEXISTS', key, hotField(sid)) == 0 then return 0 end
redis.call('HSET', key, BLACKLIST_PREFIX .. jti, int(nowMs() + ttlMs))
keepAlive(key, ttlMs)
return 1`,

  // -> how many live sessions ended
  wxauthRevokeUser: LUA_COMMON + `
local key = KEYS[1]
local now, n = nowMs(), 0
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  if isSession(all[i]) and (expiryOf(all[i + 1]) or 0) > now then n = n + 1 end
end
redis.call('DEL', key)
return n`,

  wxauthSaveCredential: `
local credentialKey, lockKey = KEYS[1], KEYS[2]
local packed, ttlMs, owner = ARGV[1], ARGV[2], ARGV[3]
redis.call('SET', credentialKey, packed, 'PX', ttlMs)
if redis.call('GET', lockKey) == owner then redis.call('DEL', lockKey) end
return 1`,

  // A lock or a login-code claim, released by its own holder only.
  wxauthDeleteIfEquals: `
local key, value = KEYS[1], ARGV[1]
if redis.call('GET', key) == value then redis.call('DEL', key) end
return 1`,

  // -> {hits in the window, ms left in it}
  wxauthHit: `
local counterKey, windowMs = KEYS[1], ARGV[1]
local c = redis.call('INCR', counterKey)
local ttl = redis.call('PTTL', counterKey)
if c == 1 or ttl < 0 then
  redis.call('PEXPIRE', counterKey, windowMs)
  ttl = tonumber(windowMs)
end
return {c, ttl}`
} as const

export type ScriptName = keyof typeof SCRIPTS
const SHAS = Object.fromEntries(Object.entries(SCRIPTS).map(([name, lua]) =>
  [name, createHash('sha1').update(lua).digest('hex')])) as Record<ScriptName, string>
const isNoScript = (err: unknown): boolean => err instanceof Error && err.message.startsWith('NOSCRIPT')

/** Sends one command, routed by `key` on a cluster. */
export type Send = (key: string | undefined, command: string[]) => Promise<unknown>

/**
 * Runs scripts by EVALSHA; after a Redis restart (NOSCRIPT) by EVAL, which loads the script again.
 * The failed command is over: the same arguments go again, with the script's text.
 */
export function scriptRunner (send: Send) {
  return async function run (name: ScriptName, keys: string[], ...args: Array<string | number>): Promise<unknown> {
    const command = ['EVALSHA', SHAS[name], String(keys.length), ...keys, ...args.map(String)]
    try {
      return await send(keys[0], command)
    } catch (err) {
      if (!isNoScript(err)) throw err
      command[0] = 'EVAL'
      command[1] = SCRIPTS[name]
      return await send(keys[0], command)
    }
  }
}
