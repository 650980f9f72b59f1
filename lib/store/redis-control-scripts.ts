// The Lua scripts of session and access control: kick, ban (of the account or of one service),
// roles and permissions, step-up. Part of SCRIPTS (redis-scripts.ts); each changes one user's hash.
import { lua } from './redis-lua.js'

export const CONTROL_SCRIPTS = {
  // ARGV: reason code, access token TTL ms, then the session ids ('*' alone: all). -> sessions ended
  wxauthKick: lua(`
local key, reason, accessTtlMs = KEYS[1], ARGV[1], tonumber(ARGV[2])
local now = nowMs()
local live, ended = scan(key, now)
local wanted = {}
for i = 3, #ARGV do wanted[ARGV[i]] = true end
local chosen = {}
for _, s in ipairs(live) do
  if wanted['*'] or wanted[s.sid] then chosen[#chosen + 1] = s end
end
trimEnded(key, ended, #chosen, now)
for _, s in ipairs(chosen) do endSession(key, s, 'kicked', reason, now, accessTtlMs) end
-- The key lives as long as what it holds, the markers now too: one may outlive the sessions (an
-- access token's lifetime), and ending a user's last session empties the hash, which deletes the
-- key, so that its marker starts a new key without a TTL (kept for good until then). A kick is rare.
if #chosen > 0 then fixTtl(key, now) end
return #chosen`),

  // ARGV: until ms (0: for good), reason code, access token TTL ms. Ends every session, then bans.
  wxauthBan: lua(`
local key, bannedUntil, reason, accessTtlMs = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = nowMs()
local live, ended = scan(key, now)
trimEnded(key, ended, #live, now)
for _, s in ipairs(live) do endSession(key, s, 'kicked', reason, now, accessTtlMs) end
redis.call('HSET', key, BAN_FIELD, pack_ban(bannedUntil, reason, ''))
fixTtl(key, now)
return 1`),

  wxauthUnban: lua(`
local key = KEYS[1]
redis.call('HDEL', key, BAN_FIELD)
fixTtl(key, nowMs())
return 1`),

  // ARGV: service, until ms (0: for good), reason code; until '' removes the service's ban. -> 1 | 'full'
  wxauthServiceBan: lua(`
local key, service, bannedUntil, reason = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local now = nowMs()
local kept = {}
local current = redis.call('HGET', key, SERVICEBANS_FIELD)
if current then
  local parts = split(current)
  for k = 1, #parts - 2, 3 do
    local u = tonumber(parts[k + 1]) or 0
    if parts[k] ~= service and (u == 0 or u > now) then kept[#kept + 1] = pack_serviceBans(parts[k], parts[k + 1], parts[k + 2]) end
  end
end
if bannedUntil ~= '' then
  if #kept >= MAX_SERVICE_BANS then return 'full' end
  kept[#kept + 1] = pack_serviceBans(service, bannedUntil, reason)
end
if #kept == 0 then redis.call('HDEL', key, SERVICEBANS_FIELD) else redis.call('HSET', key, SERVICEBANS_FIELD, table.concat(kept, SEP)) end
fixTtl(key, now)
return 1`),

  // ARGV: the packed roles and permissions ('' forgets them).
  wxauthSetAccess: lua(`
local key, access = KEYS[1], ARGV[1]
if access == '' then redis.call('HDEL', key, ACCESS_FIELD) else redis.call('HSET', key, ACCESS_FIELD, access) end
fixTtl(key, nowMs())
return 1`),

  // ARGV: session id, the session_key of the code that proved the user.
  // -> {'ok', now} | 'revoked' | {'ended', reason, ended at, by}
  wxauthStepUp: lua(`
local key, sid, sessionKey = KEYS[1], ARGV[1], ARGV[2]
local v = redis.call('HMGET', key, hotField(sid), secretField(sid), BAN_FIELD, rotationField(sid))
local now = nowMs()
local banned = banOf(key, v[3], now)
if banned then return banned end
if not v[1] or (expiryOf(v[1]) or 0) <= now then return endOf(key, sid, now) or 'revoked' end
local _, createdAt, sub, claims = unpack_secret(v[2])
local rotatedAt, nonce, _, ageFrom = unpack_rotation(v[4])
redis.call('HSET', key, secretField(sid), pack_secret(sessionKey, createdAt, sub, claims), rotationField(sid), pack_rotation(rotatedAt, nonce, int(now), ageFrom))
return {'ok', int(now)}`)
} as const
