// The Lua the store's scripts share: the clock, a user's sessions found in one pass, ending a session
// with a marker, the ban, the key's lifetime (roles and service bans keep it for good). Field names and packed values come from LUA_LAYOUT.
import { LUA_LAYOUT } from './redis-layout.js'

export const LUA_COMMON = LUA_LAYOUT + `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function dropSession(key, sid) redis.call('HDEL', key, fieldsOf(sid)) end
-- Numbers go to redis.call as integer strings: Redis 7.2.0-7.2.4 turned whole doubles such as
-- 1e9 into '1e+09' (redis/redis#13113), which PEXPIRE refuses and tonumber misreads.
local function int(n) return string.format('%d', n) end
local function isSession(name) return #name == SID_CHARS end
local function isBlacklisted(name) return string.sub(name, 1, #BLACKLIST_PREFIX) == BLACKLIST_PREFIX end
local function isEnded(name) return #name == SID_CHARS + #ENDED_SUFFIX and string.sub(name, -#ENDED_SUFFIX) == ENDED_SUFFIX end
-- The expiry (ms) a session's hot value, a blacklist entry or an ended marker starts with.
local function expiryOf(v) return tonumber(string.match(v, '^(%d+)')) end
-- A value split at every SEP (the list of service bans).
local function split(v)
  local parts, i = {}, 1
  while true do
    local j = string.find(v, SEP, i, true)
    parts[#parts + 1] = string.sub(v, i, j and j - 1 or -1)
    if not j then return parts end
    i = j + 1
  end
end
-- The key lives as long as what it holds: its latest session, marker, blacklist entry or ban, or
-- for good while it holds roles or permissions or a ban without end. A key with nothing left is deleted.
local function fixTtl(key, now)
  local latest = 0
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local name = all[i]
    if name == BAN_FIELD then
      local bannedUntil = tonumber((unpack_ban(all[i + 1]))) or 0
      if bannedUntil == 0 then return redis.call('PERSIST', key) end
      latest = math.max(latest, bannedUntil)
    elseif name == ACCESS_FIELD then
      return redis.call('PERSIST', key)
    elseif name == SERVICEBANS_FIELD then
      local parts = split(all[i + 1])
      for k = 2, #parts, 3 do
        local bannedUntil = tonumber(parts[k]) or 0
        if bannedUntil == 0 then return redis.call('PERSIST', key) end
        latest = math.max(latest, bannedUntil)
      end
    elseif isSession(name) or isBlacklisted(name) or isEnded(name) then
      latest = math.max(latest, expiryOf(all[i + 1]) or 0)
    end
  end
  if latest <= now then return redis.call('DEL', key) end
  return redis.call('PEXPIRE', key, int(latest - now))
end
-- After a write of something that lives \`ttl\` ms: the key lives at least that long. A key without
-- expiry is new or kept for good (roles, a service ban): fixTtl decides which.
local function keepAlive(key, ttl, now)
  local pttl = redis.call('PTTL', key)
  if pttl == -1 and (redis.call('HEXISTS', key, ACCESS_FIELD) == 1 or redis.call('HEXISTS', key, SERVICEBANS_FIELD) == 1) then
    return fixTtl(key, now)
  end
  if pttl < ttl then redis.call('PEXPIRE', key, int(ttl)) end
end
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
-- Markers are bounded: the oldest are forgotten (their tokens then get the generic code).
local function trimEnded(key, ended, added)
  if #ended + added <= MAX_ENDED then return end
  table.sort(ended, function (a, b) return a.at < b.at end)
  for i = 1, math.min(#ended, #ended + added - MAX_ENDED) do redis.call('HDEL', key, ended[i].name) end
end
-- The user's ban while it lasts, as a reply {'ended', 'banned', until (0: for good), reason}; nil
-- when none (an expired one is dropped).
local function banOf(key, value, now)
  if not value then return nil end
  local bannedUntil, reason = unpack_ban(value)
  local untilMs = tonumber(bannedUntil) or 0
  if untilMs ~= 0 and untilMs <= now then
    redis.call('HDEL', key, BAN_FIELD)
    return nil
  end
  return {'ended', 'banned', int(untilMs), reason}
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
