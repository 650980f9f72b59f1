// The Lua scripts of one-time tickets and web QR logins (part of SCRIPTS, redis-scripts.ts), and the
// fields of a QR login's hash, which the scripts and redis-handoff.ts both take from here. Each
// script changes one key; a QR login's steps follow stepOf and collectOf (memory-handoff.ts).
import { lua } from './redis-lua.js'

/** A QR login's hash: one short field name per part. The secret is only ever a digest. */
export const QR_FIELDS = {
  state: 's',
  appid: 'a',
  secretHash: 'k',
  createdAt: 'c',
  expiresAt: 'e',
  ip: 'ip',
  userAgent: 'ua',
  scannerTag: 'u',
  scannerSid: 'i',
  scannedAt: 't',
  collected: 'x',
  /** Counts the changes: watchers compare it. */
  version: 'v'
} as const

const F = QR_FIELDS
// Reads the hash into `r`, and the state it shows at `now` (open ones past their expiry: 'expired').
const READ_QR = `
local r = {}
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do r[all[i]] = all[i + 1] end
local function shown(now)
  local s = r['${F.state}']
  local open = s == 'pending' or s == 'scanned' or (s == 'confirmed' and r['${F.collected}'] ~= '1')
  if open and tonumber(r['${F.expiresAt}']) <= now then return 'expired' end
  return s
end
local function saved(fields)
  fields[#fields + 1] = '${F.version}'
  fields[#fields + 1] = tostring((tonumber(r['${F.version}']) or 0) + 1)
  redis.call('HSET', key, unpack(fields))
  return {'ok', unpack(redis.call('HGETALL', key))}
end`

export const HANDOFF_SCRIPTS = {
  // -> {the ticket's value, its time left in ms}, gone from Redis (GETDEL, which Redis 6.0 lacks) | nil
  wxauthTake: `
local key = KEYS[1]
local v = redis.call('GET', key)
if not v then return false end
local ttl = redis.call('PTTL', key)
redis.call('DEL', key)
return {v, ttl}`,

  // ARGV: appid, secret digest, ttl ms, keep ms, ip, user agent. -> the hash, flat
  wxauthQrCreate: lua(`
local key, appid, secretHash, ttlMs, keepMs, ip, userAgent = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
local now = nowMs()
redis.call('HSET', key, '${F.state}', 'pending', '${F.appid}', appid, '${F.secretHash}', secretHash, '${F.createdAt}', int(now),
  '${F.expiresAt}', int(now + ttlMs), '${F.ip}', ip, '${F.userAgent}', userAgent, '${F.version}', '1')
redis.call('PEXPIRE', key, int(ttlMs + keepMs))
return redis.call('HGETALL', key)`),

  // ARGV: step (scan | confirm | cancel), appid, the user's tag, session id.
  // -> {'ok', the hash, flat} | {'refused', why, state}
  wxauthQrStep: lua(`
local key, step, appid, tag, sid = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
${READ_QR}
if not r['${F.state}'] then return {'refused', 'missing', ''} end
local now = nowMs()
local state = shown(now)
if state == 'expired' then return {'refused', 'expired', ''} end
if r['${F.appid}'] ~= appid then return {'refused', 'wrong-app', ''} end
local scanner = r['${F.scannerTag}']
if scanner and scanner ~= tag then return {'refused', 'other-user', state} end
if step == 'scan' then
  if state == 'pending' then return saved({'${F.state}', 'scanned', '${F.scannerTag}', tag, '${F.scannerSid}', sid, '${F.scannedAt}', int(now)}) end
  if state == 'scanned' then return {'ok', unpack(all)} end
  return {'refused', 'state', state}
end
if state ~= 'scanned' then return {'refused', 'state', state} end
return saved({'${F.state}', step == 'confirm' and 'confirmed' or 'cancelled', '${F.scannerSid}', sid})`),

  // ARGV: the presented secret's digest. -> {'ok', the hash, flat} | {'refused', why, state}
  wxauthQrCollect: lua(`
local key, secretHash = KEYS[1], ARGV[1]
${READ_QR}
if not r['${F.state}'] then return {'refused', 'missing', ''} end
if r['${F.secretHash}'] ~= secretHash then return {'refused', 'wrong-secret', ''} end
local state = shown(nowMs())
if r['${F.collected}'] == '1' then return {'refused', 'collected', state} end
if state == 'expired' then return {'refused', 'expired', ''} end
if state ~= 'confirmed' then return {'refused', 'state', state} end
return saved({'${F.collected}', '1'})`),

  // A collect undone (its session could not be opened). Only a collected hash is written: one that
  // expired meanwhile is not made again, and keeps its lifetime. -> 1 when undone, 0 otherwise
  wxauthQrUncollect: `
local key = KEYS[1]
${READ_QR}
if r['${F.collected}'] ~= '1' then return 0 end
saved({'${F.collected}', '0'})
return 1`
} as const
