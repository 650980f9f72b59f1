// The Redis layout, written down once: key names, the fields of a user's hash, and how values are
// packed. The TypeScript readers below and the Lua scripts (LUA_LAYOUT, redis-lua-layout.ts,
// generated from the same constants) both take it from here.
//
// A user is one hash, under the Cluster hash tag `{tag}`, so all of a user changes in one slot. Each
// session is four fields (three without a device), five once it has rotated, named by its id and a
// suffix; each value stays
// under 64 bytes so that Redis keeps the hash in its compact listpack encoding (one longer value
// turns the whole hash into a hashtable, about twice the memory). Values are joined with SEP, which
// none of them can contain. Blacklisted access tokens are `b:<jti>` -> expiresAt ms.
import calculateSlot from 'cluster-key-slot'

export const SEP = '\u0001'
export const BLACKLIST_PREFIX = 'b:'

/**
 * The packed values of a session, by field suffix, with their parts in order. `hot`'s generation is
 * left out while it is '0' (a session that never rotated) and nothing follows it: 32 bytes less in
 * Redis' allocator. `sub` is stored as '' when it is the openid.
 */
export const SESSION_FIELDS = {
  /**
   * Read on every authenticated request and refresh. `delivered`: the generation an access token of
   * which was used (wxauthDeliver); equal to `generation`, the last rotation's answer reached its
   * client. Left out while ''.
   */
  hot: { suffix: '', parts: ['expiresAt', 'refreshDigest', 'generation', 'delivered'] },
  identity: { suffix: 'o', parts: ['openid', 'unionid'] },
  /** Only what follows the session_key ever leaves Redis in a script's reply. */
  secret: { suffix: 'k', parts: ['sessionKey', 'createdAt', 'sub', 'claims'] },
  /**
   * By the first rotation: when the current token was issued, its nonce; by a step-up: when the session
   * last proved its user (ms, store's clock), kept by rotations; read with every session check. ageFrom:
   * SESSION_MAX_AGE's start for a session opened from another ('' createdAt); fixed-size, unlike secret.
   */
  rotation: { suffix: 'p', parts: ['rotatedAt', 'nonce', 'steppedUpAt', 'ageFrom'] },
  /** What the user sees in their list of devices; at most DEVICE_BYTES (see deviceParts). */
  device: { suffix: 'd', parts: ['deviceType', 'deviceName', 'ip', 'userAgent'] },
  /**
   * Left in place of a session that another login ended (its other fields are gone), so that its
   * tokens are told why: until when it is kept, why, when, and the device type that replaced it.
   */
  ended: { suffix: 'x', parts: ['expiresAt', 'reason', 'endedAt', 'detail'] },
  /**
   * The user's ban, one field of the user's hash (no session id has a '!'): until when (ms; 0 for
   * good), the reason code, and the service it is limited to ('' for all). Read with every session
   * check, in the same HMGET.
   */
  ban: { name: '!ban', parts: ['bannedUntil', 'reason', 'service'] },
  /**
   * The user's roles and permissions, each list joined with ',' (names never hold one), and where
   * they came from: '' an operator or the host (setAccess), kept for good (the standalone gateway has
   * no other home for them); ACCESS_FROM_LOGIN resolveUser at a login, which gives them again at the
   * next, so they live as long as the user's sessions (a host that gives every user a role must not
   * keep every user's hash for good). Read with every
   * session check. Longer than 64 bytes, it turns the user's hash into a hashtable (about twice
   * the memory): a cost paid by users with many roles only.
   */
  access: { name: '!acl', parts: ['roles', 'permissions', 'source'] },
  /**
   * The user's bans from single services: a list of entries of these parts, one after another,
   * at most MAX_SERVICE_BANS. Read with every session check; only a route that names the service
   * refuses (authorize's `service`).
   */
  serviceBans: { name: '!sban', parts: ['service', 'bannedUntil', 'reason'] }
} as const

/** At most this many service bans per user at once. */
export const MAX_SERVICE_BANS = 8

/**
 * The device value is cut to this many bytes (UTF-8), the user agent giving way first, then the name:
 * small enough that a session with its device costs under 500 bytes of Redis memory (`npm run bench`:
 * 395 new, 462 refreshed, for a user with one session). The type (8 bytes at most) and IP (45) are never
 * cut: with both at their longest the value has 56 bytes, under Redis' 64-byte compact limit. */
export const DEVICE_BYTES = 48

/** At most this many ended markers per user, the oldest forgotten first: a user's hash stays bounded however often it logs in. */
export const MAX_ENDED = 24
/**
 * When a user's markers would pass MAX_ENDED, the oldest go down to MAX_ENDED - ENDED_SLACK: a user who
 * logs in at the session limit has its markers' times read once every ENDED_SLACK + 1 logins, not at
 * each (issue 14: reading 24 markers was a fifth of such a login's Redis time). The most recent
 * MAX_ENDED - ENDED_SLACK are always kept.
 */
export const ENDED_SLACK = 8

/** The fields every session has from its creation: hot, identity and secret (rotation and device may follow). */
export const FIELDS_PER_SESSION = 3
/**
 * A login with no exclusive rule reads the user's whole hash (to end sessions past the limit, and drop
 * what expired) only once the hash has this many fields, or FIELDS_PER_SESSION times the limit: below
 * both, the user cannot be at the limit, and the pass is skipped (issue 14: most of a login's Redis
 * time). What expired meanwhile waits for the next pass or the key's expiry, so a hash stays within
 * some SCANLESS_FIELDS + MAX_ENDED fields and its live sessions', whatever the limit (the store's
 * own callers may give none). 48: three times the largest MAX_SESSIONS_PER_USER.
 */
export const SCANLESS_FIELDS = 48
export const DEVICE_NAME_BYTES = 20

/** `text` cut to at most `bytes` bytes of UTF-8, never inside a character, without SEP. */
export function cutBytes (text: string, bytes: number): string {
  const clean = text.replaceAll(SEP, ' ')
  const buf = Buffer.from(clean, 'utf8')
  if (buf.length <= bytes) return clean
  let end = Math.max(0, bytes)
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--
  return buf.subarray(0, end).toString('utf8')
}

/** A session's device parts within DEVICE_BYTES: type and IP kept, the name gets what they leave, the user agent the rest. */
export function deviceParts (d: { deviceType: string, deviceName?: string, ip?: string, userAgent?: string }): string[] {
  const ip = cutBytes(d.ip ?? '', 45)
  const room = Math.min(DEVICE_NAME_BYTES, DEVICE_BYTES - Buffer.byteLength(d.deviceType) - Buffer.byteLength(ip) - 3)
  const head = [d.deviceType, cutBytes(d.deviceName ?? '', Math.max(0, room)), ip]
  return [...head, cutBytes(d.userAgent ?? '', DEVICE_BYTES - head.reduce((n, p) => n + Buffer.byteLength(p), 0) - head.length)]
}

type FieldName = keyof typeof SESSION_FIELDS
type PerSession = { [F in FieldName]: (typeof SESSION_FIELDS)[F] extends { suffix: string } ? F : never }[FieldName]
type Parts<F extends FieldName> = (typeof SESSION_FIELDS)[F]['parts'][number]
export type Unpacked<F extends FieldName> = Record<Parts<F>, string>

/** The hash field of a session's value. */
export const sessionField = (sid: string, field: PerSession): string => sid + SESSION_FIELDS[field].suffix
/** The hash fields of the user's ban, roles and permissions, and service bans: user fields start with '!'. */
export const BAN_FIELD = SESSION_FIELDS.ban.name
export const ACCESS_FIELD = SESSION_FIELDS.access.name
export const SERVICE_BANS_FIELD = SESSION_FIELDS.serviceBans.name

/** The `source` of roles resolveUser gave at a login. */
export const ACCESS_FROM_LOGIN = 'l'

/** Roles and permissions as stored; both empty is no field at all. Names holding ',' or SEP are refused. */
export function packAccess (a: { roles: readonly string[], permissions: readonly string[] }, source = ''): string {
  const names = [...a.roles, ...a.permissions]
  if (names.some((n) => n === '' || n.includes(',') || n.includes(SEP))) throw new TypeError('a role or permission name is empty or holds "," or the separator')
  return names.length === 0 ? '' : [a.roles.join(','), a.permissions.join(','), source].join(SEP)
}
export function unpackAccess (packed: string | null | undefined): { roles: string[], permissions: string[] } {
  const { roles, permissions } = unpack('access', packed)
  const list = (s: string): string[] => s === '' ? [] : s.split(',')
  return { roles: list(roles), permissions: list(permissions) }
}

/** Service bans as stored: service, until (ms; 0 for good), reason, for each. */
export function unpackServiceBans (packed: string | null | undefined): Array<{ service: string, until: number | null, reason: string }> {
  const parts = (packed ?? '').split(SEP)
  const out: Array<{ service: string, until: number | null, reason: string }> = []
  for (let i = 0; i + 2 < parts.length; i += 3) {
    const until = Number(parts[i + 1])
    out.push({ service: parts[i] as string, until: until === 0 ? null : until, reason: parts[i + 2] as string })
  }
  return out
}

/** The hash field of a blacklisted access token. */
export const blacklistField = (jti: string): string => BLACKLIST_PREFIX + jti

/** A packed value's parts by name; missing trailing parts are ''. */
export function unpack<F extends FieldName> (field: F, value: string | null | undefined): Unpacked<F> {
  const values = (value ?? '').split(SEP)
  return Object.fromEntries(SESSION_FIELDS[field].parts.map((name, i) => [name, values[i] ?? ''])) as Unpacked<F>
}

/** A packed value's first part, read without splitting the rest (the expiry of `hot`). */
export const firstPart = (packed: string): string => packed.slice(0, packed.indexOf(SEP))

/** One part of a packed value by name, '' when it has fewer parts; no object built (read on every request). */
export function partOf<F extends FieldName> (field: F, name: Parts<F>, packed: string): string {
  const k = (SESSION_FIELDS[field].parts as readonly string[]).indexOf(name)
  return packed.split(SEP, k + 1)[k] ?? ''
}

/** `sub` as stored: '' when it is the openid. */
export const storedSub = (sub: string, openid: string): string => sub === openid ? '' : sub
/** `sub` as read back. */
export const subOf = (stored: string, openid: string): string => stored === '' ? openid : stored

/** A login code's marker: claimed (with the claim's own id after the prefix), or accepted by WeChat. */
export const CODE_PENDING = 'p:'
export const CODE_USED = 'u'

/** A shared credential (WeChat's access_token): expiresAt | refreshAt | the value (which may hold SEP). */
export const packCredential = (c: { expiresAt: number, refreshAt: number, value: string }): string =>
  `${c.expiresAt}${SEP}${c.refreshAt}${SEP}${c.value}`
export function unpackCredential (packed: string): { expiresAt: number, refreshAt: number, value: string } {
  const a = packed.indexOf(SEP)
  const b = packed.indexOf(SEP, a + 1)
  return { expiresAt: Number(packed.slice(0, a)), refreshAt: Number(packed.slice(a + 1, b)), value: packed.slice(b + 1) }
}

// Names of every key the store writes.
export interface KeyNames {
  /** One hash per user: its sessions and blacklisted tokens. */
  user: (tag: string) => string
  code: (codeId: string) => string
  rateLimit: string
  /** A shared credential (an appid's access_token) and the lock of its renewal. */
  credential: (name: string) => string
  credentialLock: (name: string) => string
  /** Which user (sub) an openid of a mini program last logged in as (the admin API names users by openid). */
  openid: (appid: string, openid: string) => string
  /** A one-time ticket, by its digest; a web QR login (a hash: QR_FIELDS, redis-handoff-scripts.ts), by its id. */
  ticket: (ticketHash: string) => string
  qr: (id: string) => string
  /** Users' keys kept for good, by when the sweep visits each next, with each entry's version and their counter, in one slot; the sweep's lock (redis-kept.ts). */
  kept: [index: string, versions: string, counter: string]
  keptLock: string
  /** The readiness probe's keys: one in each sixteenth of the cluster's slots (probeKeys). */
  health: string[]
}

const SLOTS = 16384
const PROBES = 16

/**
 * Keys whose hash slots fall one in each sixteenth of the 16384: a write to each reaches every master
 * of a Redis Cluster whose masters each own a sixteenth of contiguous slots or more (as redis-cli
 * --cluster create and rebalance split them). One server or a Sentinel-managed master takes them all.
 */
export function probeKeys (prefix: string): string[] {
  const keys: string[] = []
  for (let part = 0; part < PROBES; part++) {
    for (let n = 0; ; n++) {
      const key = `${prefix}health:{${part}.${n}}`
      if (Math.floor(calculateSlot(key) * PROBES / SLOTS) === part) {
        keys.push(key)
        break
      }
    }
  }
  return keys
}

export function keyNames (prefix: string): KeyNames {
  return {
    user: (tag) => `${prefix}{${tag}}`,
    code: (codeId) => `${prefix}c:${codeId}`,
    rateLimit: `${prefix}rl:`,
    credential: (name) => `${prefix}at:{${name}}`,
    credentialLock: (name) => `${prefix}atl:{${name}}`,
    openid: (appid, openid) => `${prefix}oid:${appid}:${openid}`,
    ticket: (ticketHash) => `${prefix}tk:${ticketHash}`,
    qr: (id) => `${prefix}qr:{${id}}`,
    kept: [`${prefix}kept:{index}`, `${prefix}kept:{index}:v`, `${prefix}kept:{index}:n`],
    keptLock: `${prefix}kept:lock`,
    health: probeKeys(prefix)
  }
}
