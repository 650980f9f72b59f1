// The Lua scripts of the sweep of keys kept for good (redis-kept.ts): one visits a user's key, the
// others keep the index of such keys (a sorted set of user tags, by when to visit each next), in a
// slot of its own. Part of SCRIPTS (redis-scripts.ts).
import { lua } from './redis-lua.js'

export const KEPT_SCRIPTS = {
  // ARGV: how long a key kept by roles or a service ban may go unvisited (ms): a login may start a
  // session there without the index knowing. -> when to visit next (ms, Redis' clock) | -1: never
  // (the key is gone, lives no longer than its sessions, or holds nothing that expires and no session
  // can start).
  wxauthSweepUser: lua(`
local key, revisitMs = KEYS[1], tonumber(ARGV[1])
if redis.call('EXISTS', key) == 0 then return -1 end
local now = nowMs()
local earliest, bannedForGood = fixTtl(key, now)
if not earliest then return -1 end
if bannedForGood then return earliest == 0 and -1 or int(earliest) end
if earliest == 0 then return int(now + revisitMs) end
return int(math.min(earliest, now + revisitMs))`),

  // Before an operator's change to a user (roles, a ban, a service ban): visit it once the change has
  // landed. Each entry has a version, new at every change (a counter of the index's), so that a sweep
  // that read the entry before the change does not write its verdict over it (wxauthKeptNext). Every
  // time in the index is Redis' clock. KEYS: the index, its versions, its counter; ARGV: tag, due in
  // (ms), '1' to leave a user the index holds as it is (a login into a key kept for good) | '0'.
  wxauthKeep: lua(`
local index, versions, counter = KEYS[1], KEYS[2], KEYS[3]
local tag, dueInMs, ifAbsent = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if ifAbsent == '1' and redis.call('ZSCORE', index, tag) then return 0 end
redis.call('HSET', versions, tag, redis.call('INCR', counter))
redis.call('ZADD', index, int(nowMs() + dueInMs), tag)
return 1`),

  // -> tag, version, tag, version...: the entries due now, at most ARGV[1], the earliest first.
  wxauthKeptDue: lua(`
local index, versions, batch = KEYS[1], KEYS[2], ARGV[1]
local due = redis.call('ZRANGEBYSCORE', index, '-inf', int(nowMs()), 'LIMIT', '0', batch)
local out = {}
for _, tag in ipairs(due) do
  out[#out + 1] = tag
  out[#out + 1] = redis.call('HGET', versions, tag) or ''
end
return out`),

  // The sweep's verdict on a user, written only if no operator's change came since it read the entry
  // (its version is the one read). ARGV: tag, version read, next visit (ms) | -1: forget the user |
  // 'retry': the visit failed, come back in ARGV[4] ms.
  wxauthKeptNext: lua(`
local index, versions = KEYS[1], KEYS[2]
local tag, read, nextAt, retryMs = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if (redis.call('HGET', versions, tag) or '') ~= read then return 0 end
if nextAt == '-1' then
  redis.call('ZREM', index, tag)
  redis.call('HDEL', versions, tag)
  return 1
end
if nextAt == 'retry' then nextAt = int(nowMs() + retryMs) end
redis.call('ZADD', index, nextAt, tag)
return 1`)
} as const
