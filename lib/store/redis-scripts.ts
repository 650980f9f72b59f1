// The Lua scripts of the Redis store: what must change together changes in one script, on one key
// (one Cluster slot). Field names and packed values come from LUA_LAYOUT (redis-lua-layout.ts). Each
// script names its KEYS and ARGV as locals at the top. How they are sent (as functions of one library
// where Redis allows, else by EVALSHA): redis-script-runner.ts.
import { CONTROL_SCRIPTS } from './redis-control-scripts.js'
import { HANDOFF_SCRIPTS } from './redis-handoff-scripts.js'
import { KEPT_SCRIPTS } from './redis-kept-scripts.js'
import { lua } from './redis-lua.js'

export const SCRIPTS = {
  ...CONTROL_SCRIPTS,
  ...HANDOFF_SCRIPTS,
  ...KEPT_SCRIPTS,
  // ARGV 16, 17: '1' and the packed roles and permissions to replace the user's ('' none), or '0' to keep them.
  // ARGV 18: when SESSION_MAX_AGE counts from (ms) for a session opened from another, '' from now.
  // -> {'created', sessions ended[, 'kept': the key is kept for good, for the sweep's index]} | {'refused', device type}
  //    | {'ended', 'banned', until, reason}
  wxauthCreate: lua(`
local key = KEYS[1]
local ttl, sid, refreshDigest, sub, openid, unionid, sessionKey, claims =
  tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local deviceType, deviceName, ip, userAgent, exclusive, maxSessions, accessTtlMs, setAccess, access, ageFrom =
  ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], tonumber(ARGV[14]), tonumber(ARGV[15]), ARGV[16], ARGV[17], ARGV[18] or ''
local now = nowMs()
-- Below the limit, as the hash's size alone proves (every session has at least FIELDS_PER_SESSION
-- fields), and with no exclusive rule, nothing but the ban need be read: the pass over the user is
-- skipped, and what expired stays until a login that needs the pass (the hash is past SCANLESS_FIELDS)
-- or the key's own expiry; readers check every expiry. Most logins are of users below the limit.
local scanless = exclusive == '' and redis.call('HLEN', key) < math.min(FIELDS_PER_SESSION * maxSessions, SCANLESS_FIELDS)
local live, ended, banned = {}, {}, nil
if scanless then banned = banOf(key, redis.call('HGET', key, BAN_FIELD), now) else live, ended, banned = scan(key, now, true) end
if banned then return banned end
local kept, count = {}, 0
for _, s in ipairs(live) do
  local sameType = exclusive ~= '' and typeOf(s) == deviceType
  if exclusive == 'refuse' and sameType then return {'refused', deviceType} end
  if exclusive == 'all' or (exclusive == 'same' and sameType) then
    endSession(key, s, 'replaced', deviceType, now, accessTtlMs)
    count = count + 1
  else
    kept[#kept + 1] = s
  end
end
-- The session limit: the least recently refreshed go first.
if #kept >= maxSessions then
  for _, s in ipairs(kept) do s.active = activityOf(s) end
  for _, s in ipairs(leastOf(kept, #kept - maxSessions + 1, 'active')) do
    endSession(key, s, 'limit', deviceType, now, accessTtlMs)
    count = count + 1
  end
end
trimEnded(key, ended, count, now)
redis.call('HSET', key,
  hotField(sid), pack_hot(int(now + ttl), refreshDigest, '0', ''),
  identityField(sid), pack_identity(openid, unionid),
  secretField(sid), pack_secret(sessionKey, int(now), storedSub(sub, openid), claims))
if ageFrom ~= '' then redis.call('HSET', key, rotationField(sid), pack_rotation('', '', '', ageFrom)) end
if deviceType ~= '' then redis.call('HSET', key, deviceField(sid), pack_device(deviceType, deviceName, ip, userAgent)) end
if setAccess == '1' then
  if access == '' then redis.call('HDEL', key, ACCESS_FIELD) else redis.call('HSET', key, ACCESS_FIELD, access) end
end
-- The markers written last as long as an access token (a session's refresh TTL may be shorter).
if keepAlive(key, count > 0 and math.max(ttl, accessTtlMs) or ttl, now) then return {'created', count, 'kept'} end
return {'created', count}`),

  // -> 'invalid' | 'behind' | {'ended', reason, ended at, by} | {'rotated', ttl ms, openid, unionid, sub, claims[, 'kept'] (as wxauthCreate)}
  //    | {'predecessor', ttl ms, openid, unionid, sub, claims, nonce, current digest, in grace '1' | '0', delivered '1' | '0'}
  // Never the session_key. The hot path of every refresh: values are cut with plain string.find.
  wxauthRotate: lua(`
local key = KEYS[1]
local sid, presented, presentedDigest, nextDigest, nonce, graceMs, ttlMs, maxAgeMs =
  ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local v = redis.call('HMGET', key, hotField(sid), identityField(sid), secretField(sid), rotationField(sid), BAN_FIELD)
local now = nowMs()
local banned = banOf(key, v[5], now)
if banned then return banned end
if not v[1] then return endOf(key, sid, now) or 'invalid' end
local _, current, generation, delivered, extra = unpack_hot(v[1])
-- A session that never rotated stores no generation. A value this version did not write is refused
-- (an expiry that is not a time too: expiryOf's nil), never a script error.
local expiresAt = expiryOf(v[1])
if generation == '' then generation = 0 else generation = tonumber(string.match(generation, '^%d+$')) end
if not generation or extra ~= '' then return 'invalid' end
if not expiresAt or expiresAt <= now then
  dropSession(key, sid)
  return 'invalid'
end
local openid, unionid = unpack_identity(v[2])
local _, createdAt, sub, claims = unpack_secret(v[3])
local ageFrom = partOf(v[4], 4)
sub = subOf(sub, openid)
if presented == generation and presentedDigest == current then
  local ttl = math.min(ttlMs, tonumber(ageFrom ~= '' and ageFrom or createdAt) + maxAgeMs - now)
  if ttl <= 0 then
    dropSession(key, sid)
    return 'invalid'
  end
  redis.call('HSET', key, hotField(sid), pack_hot(int(now + ttl), nextDigest, int(generation + 1), ''),
    rotationField(sid), pack_rotation(int(now), nonce, partOf(v[4], 3), ageFrom))
  if keepAlive(key, ttl, now) then return {'rotated', int(ttl), openid, unionid, sub, claims, 'kept'} end
  return {'rotated', int(ttl), openid, unionid, sub, claims}
end
if presented == generation - 1 then
  local rotatedAt, lastNonce = unpack_rotation(v[4])
  rotatedAt = tonumber(string.match(rotatedAt, '^%d+$'))
  if not rotatedAt then return 'invalid' end
  local inGrace = now - rotatedAt <= graceMs
  return {'predecessor', int(expiresAt - now), openid, unionid, sub, claims, lastNonce, current, inGrace and '1' or '0',
    delivered == int(generation) and '1' or '0'}
end
if presented < generation - 1 then return 'behind' end
return 'invalid'`),

  // An access token issued at generation ARGV[2] was used: that rotation's answer reached its client.
  // Marked only while it is the session's current generation, so a mark that comes late (the session
  // rotated again since) changes nothing, and never a newer generation. -> 1 marked, 0 not.
  wxauthDeliver: lua(`
local key = KEYS[1]
local sid, issuedAt = ARGV[1], ARGV[2]
local v = redis.call('HGET', key, hotField(sid))
if not v then return 0 end
local expiresAt, current, generation, delivered, extra = unpack_hot(v)
if extra ~= '' or generation ~= issuedAt or delivered == generation then return 0 end
redis.call('HSET', key, hotField(sid), pack_hot(expiresAt, current, generation, generation))
return 1`),

  wxauthRevoke: lua(`
local key, sid = KEYS[1], ARGV[1]
dropSession(key, sid)
return 1`),

  // Only a live session's tokens need blacklisting (an expired one may still be in the hash: a login
  // that cannot reach the limit does not sweep).
  wxauthBlacklist: lua(`
local key, sid, jti, ttlMs = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local hot = redis.call('HGET', key, hotField(sid))
local now = nowMs()
if not hot or (expiryOf(hot) or 0) <= now then return 0 end
redis.call('HSET', key, BLACKLIST_PREFIX .. jti, int(now + ttlMs))
keepAlive(key, ttlMs, now)
return 1`),

  // -> how many live sessions ended
  wxauthRevokeUser: lua(`
local key = KEYS[1]
local now, n = nowMs(), 0
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  if isSession(all[i]) and (expiryOf(all[i + 1]) or 0) > now then n = n + 1 end
end
-- Logging out everywhere ends the sessions, not what belongs to the user: bans, roles (fields named '!...').
local kept = {}
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 1) == '!' then
    kept[#kept + 1] = all[i]
    kept[#kept + 1] = all[i + 1]
  end
end
redis.call('DEL', key)
if #kept > 0 then
  redis.call('HSET', key, unpack(kept))
  fixTtl(key, now)
end
return n`),

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
