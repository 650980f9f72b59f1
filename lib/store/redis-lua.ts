// The Lua the store's scripts share: the clock, a user's sessions found in one pass, ending a session
// with a marker, the ban, the key's lifetime (roles and service bans keep it for good). Field names and
// packed values come from LUA_LAYOUT.
import { SESSION_FIELDS } from './redis-layout.js'
import { scriptsOf } from './lua-prelude.js'
import { LUA_LAYOUT } from './redis-lua-layout.js'

/** A part's position (from 1) in its packed value, for partOf. */
const partIndex = <F extends keyof typeof SESSION_FIELDS>(field: F, name: (typeof SESSION_FIELDS)[F]['parts'][number]): number =>
  (SESSION_FIELDS[field].parts as readonly string[]).indexOf(name) + 1

const lastByte = (suffix: string): number => suffix.charCodeAt(suffix.length - 1)

export const LUA_COMMON = LUA_LAYOUT + `
-- Later than any time this store writes (about the year 30,000): what lies beyond is not a time.
local MAX_TIME_MS = 9e14
-- Last bytes of field names, as numbers: a library's top level (redis-functions.ts) has no string library.
local ENDED_BYTE, IDENTITY_BYTE = ${lastByte(SESSION_FIELDS.ended.suffix)}, ${lastByte(SESSION_FIELDS.identity.suffix)}
local DEVICE_TYPE_PART, CREATED_AT_PART, ROTATED_AT_PART, ENDED_AT_PART =
  ${partIndex('device', 'deviceType')}, ${partIndex('secret', 'createdAt')}, ${partIndex('rotation', 'rotatedAt')}, ${partIndex('ended', 'endedAt')}
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
-- The expiry (ms) a session's hot value, a blacklist entry or an ended marker starts with: its first
-- part (a blacklist entry has only that), cut with a plain find, cheaper than a pattern with a capture
-- (most of what the one pass gained in issue 15), and read as wxauthRotate reads its own: tonumber,
-- then nil for what is not a time (negative, inf, nan, past MAX_TIME_MS), as the pattern gave.
local function expiryOf(v)
  local p = string.find(v, SEP, 1, true)
  local n = tonumber(p and string.sub(v, 1, p - 1) or v)
  if n and n >= 0 and n < MAX_TIME_MS then return n end
  return nil
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
-- The kth part of a packed value, '' when it has fewer (what the kth result of unpack_* is).
local function partOf(v, k)
  v = v or ''
  local from = 1
  for _ = 2, k do
    local p = string.find(v, SEP, from, true)
    if not p then return '' end
    from = p + 1
  end
  local e = string.find(v, SEP, from, true)
  return string.sub(v, from, e and e - 1 or -1)
end
-- Deletes fields, in as few commands as the stack allows.
local function forget(key, names)
  for i = 1, #names, 1000 do redis.call('HDEL', key, unpack(names, i, math.min(i + 999, #names))) end
end
-- One pass over the user: drops the sessions and blacklist entries that expired, and lists the live
-- sessions (id, expiry) and the ended markers kept. A login at the session limit runs it over some
-- 60 fields, and the Lua that reads them was most of its cost (issue 14), so it parses sessions'
-- expiries only: a session's device type and last activity (typeOf, activityOf) are read when a rule
-- needs them, a marker's times only when there are too many (trimEnded). Every table made here costs
-- each such login (issue 15): the markers are listed as their positions in the reply (ended.all), and
-- a session's identity, which no rule reads, is not kept.
-- Markers come in the order they were written (a compact hash keeps its fields' order; a new field
-- goes last), the oldest first: the expired ones at the head are dropped, up to the first that still
-- answers, one expiry read when none expired (a login at the limit, markers a few minutes old). A hash
-- in Redis' hashtable encoding keeps no order: fewer may go, never one that answers. So a
-- user whose logins end sessions now and then (an exclusive device type, the limit) does not keep up
-- to MAX_ENDED dead markers, each read by every later pass (issue 15, twelfth session).
-- With checkBan, the user's ban is read in the same pass, and a banned user's hash is left as it is:
-- nil, nil, the ban's reply.
local function scan(key, now, checkBan)
  local all = redis.call('HGETALL', key)
  local values, live, ended, gone, ban, head = {}, {}, { all = all }, {}, nil, true
  for i = 1, #all, 2 do
    local name = all[i]
    local n = #name
    if n == SID_CHARS + 1 then
      local b = string.byte(name, n)
      if b == ENDED_BYTE then
        if head and (expiryOf(all[i + 1]) or 0) <= now then
          gone[#gone + 1] = name
        else
          head = false
          ended[#ended + 1] = i
        end
      elseif b ~= IDENTITY_BYTE then
        values[name] = all[i + 1]
      end
    elseif n == SID_CHARS then
      local exp = expiryOf(all[i + 1])
      if exp and exp > now then
        live[#live + 1] = { sid = name, expiresAt = exp, values = values }
      else
        local h, o, k, p, d = fieldsOf(name)
        gone[#gone + 1], gone[#gone + 2], gone[#gone + 3], gone[#gone + 4], gone[#gone + 5] = h, o, k, p, d
      end
    elseif name == BAN_FIELD then
      ban = all[i + 1]
    elseif isBlacklisted(name) then
      local exp = expiryOf(all[i + 1])
      if not exp or exp <= now then gone[#gone + 1] = name end
    end
  end
  if checkBan then
    local banned = banOf(key, ban, now)
    if banned then return nil, nil, banned end
  end
  forget(key, gone)
  return live, ended
end
local function typeOf(s) return partOf(s.values[deviceField(s.sid)], DEVICE_TYPE_PART) end
-- When a session was last active: its last refresh, or its creation.
local function activityOf(s)
  return math.max(tonumber(partOf(s.values[secretField(s.sid)], CREATED_AT_PART)) or 0,
    tonumber(partOf(s.values[rotationField(s.sid)], ROTATED_AT_PART)) or 0)
end
-- The n entries of a list with the least entry[field] (all of them when n >= #list): one pass for
-- the usual one, a sort for more.
local function leastOf(list, n, field)
  if n == 1 then
    local least = list[1]
    for i = 2, #list do if list[i][field] < least[field] then least = list[i] end end
    return { least }
  end
  table.sort(list, function (a, b) return a[field] < b[field] end)
  return { unpack(list, 1, math.min(n, #list)) }
end
-- Ends a session another login replaces: its tokens will be told why, until the last could be presented.
local function endSession(key, s, reason, by, now, accessTtlMs)
  dropSession(key, s.sid)
  redis.call('HSET', key, endedField(s.sid), pack_ended(int(math.max(s.expiresAt, now + accessTtlMs)), reason, int(now), by))
end
-- Markers are bounded: past MAX_ENDED the expired go first (scan drops only those at the head), then
-- the oldest, ENDED_SLACK more at once (their tokens then get the generic code): a marker that still
-- answers never goes while one that expired stays, as in the memory store.
local function trimEnded(key, ended, added, now)
  if #ended + added <= MAX_ENDED then return end
  local all, markers, dropped = ended.all, {}, {}
  for _, i in ipairs(ended) do
    local v = all[i + 1]
    if (expiryOf(v) or 0) <= now then
      dropped[#dropped + 1] = all[i]
    else
      markers[#markers + 1] = { name = all[i], at = tonumber(partOf(v, ENDED_AT_PART)) or 0 }
    end
  end
  if #markers + added > MAX_ENDED then
    for _, e in ipairs(leastOf(markers, #markers + added - MAX_ENDED + ENDED_SLACK, 'at')) do dropped[#dropped + 1] = e.name end
  end
  forget(key, dropped)
end
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
-- for good while it holds roles an operator set or a ban without end. What expired is deleted first;
-- a key with nothing left is deleted. Kept for good, or while a service ban lasts (its end, years
-- away, may set the key's lifetime while sessions come and go), it answers when the first of what it
-- still holds expires (0: nothing does) and whether a ban without end keeps it (no session can start
-- then): when the sweep of such keys (redis-kept.ts) must come back.
local function fixTtl(key, now)
  local latest, earliest, forGood, bannedForGood, serviceBanned, gone = 0, 0, false, false, false, {}
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local name, v = all[i], all[i + 1]
    if name == BAN_FIELD then
      local bannedUntil = tonumber((unpack_ban(v))) or 0
      if bannedUntil == 0 then forGood, bannedForGood = true, true end
      latest = math.max(latest, bannedUntil)
    elseif name == ACCESS_FIELD then
      local _, _, source = unpack_access(v)
      if source ~= ACCESS_FROM_LOGIN then forGood = true end
    elseif name == SERVICEBANS_FIELD then
      local parts = split(v)
      for k = 2, #parts, 3 do
        local bannedUntil = tonumber(parts[k]) or 0
        if bannedUntil == 0 then forGood = true end
        if bannedUntil == 0 or bannedUntil > now then serviceBanned = true end
        latest = math.max(latest, bannedUntil)
      end
    elseif isSession(name) or isBlacklisted(name) or isEnded(name) then
      local exp = expiryOf(v) or 0
      -- What expired goes now: a key kept for good must not keep a dead session's session_key.
      if exp <= now then
        if isSession(name) then
          local h, o, k, p, d = fieldsOf(name)
          gone[#gone + 1], gone[#gone + 2], gone[#gone + 3], gone[#gone + 4], gone[#gone + 5] = h, o, k, p, d
        else
          gone[#gone + 1] = name
        end
      elseif earliest == 0 or exp < earliest then
        earliest = exp
      end
      latest = math.max(latest, exp)
    end
  end
  forget(key, gone)
  if forGood then
    redis.call('PERSIST', key)
    return earliest, bannedForGood
  end
  if latest <= now then
    redis.call('DEL', key)
  else
    redis.call('PEXPIRE', key, int(latest - now))
  end
  if serviceBanned then return earliest, false end
  return nil
end
-- A key without a TTL is new (a first session, or a hash emptied and written again), or was kept for
-- good (roles, a ban without end) and what kept it may just have gone (a login replaced operator roles
-- with none): its lifetime is set from all it holds, not from this write alone.
local function keepAlive(key, ttl, now)
  local pttl = redis.call('PTTL', key)
  if pttl == -1 then return fixTtl(key, now) end
  if pttl < ttl then redis.call('PEXPIRE', key, int(ttl)) end
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

/** A script (`lua(body)`: `body` after the shared Lua it uses), and what a script runs after the shared Lua (`bodyOf`). */
export const { lua, bodyOf } = scriptsOf(LUA_COMMON)
