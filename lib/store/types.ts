// The contract both session stores honour (lib/store/memory.ts, lib/store/redis.ts).
// It knows nothing about HTTP or JWTs: hashes in, records out. Time is the store's own clock
// (Redis TIME), so gateway instances with skewed clocks agree on grace windows and lifetimes.
import type { SessionRef } from '../ids.js'
import type { HandoffStore } from './handoff-types.js'

/** The device a session was opened on, as the user sees it in their list of devices. */
export interface DeviceInfo {
  /** A short name from the configured set (DEVICE_TYPES), e.g. `mp` for the mini program. */
  deviceType: string
  /** What the client says it is (wx.getDeviceInfo's model, say); cut to a few dozen bytes. */
  deviceName?: string
  ip?: string
  userAgent?: string
}

/** A session as its user sees it: never its session_key or tokens. */
export interface SessionInfo extends Required<DeviceInfo> {
  sid: string
  createdAt: number
  /** When it was last refreshed; null when never. */
  lastRefreshAt: number | null
  expiresAt: number
}

/**
 * Why a session's tokens are refused other than by logout or expiry. `replaced`: an exclusive login
 * of the same (or any) device type; `limit`: the user's session limit (`by`: the device type of the
 * login that ended it); `kicked`: ended by the host or an operator (`by`: their reason code);
 * `banned`: the account is banned (`by`: the reason code; `endedAt`: until when, 0 for good).
 */
export interface SessionEnd {
  reason: 'replaced' | 'limit' | 'kicked' | 'banned'
  endedAt: number
  by: string
}

/** A ban of an account: until when (ms epoch; null for good), and a reason code for the client. */
export interface Ban {
  until: number | null
  reason: string
}

/** A ban from one named service only: checked where a route asks for it (authorize's `service`). */
export interface ServiceBan extends Ban {
  service: string
}

/** A user's roles and permissions, as the host's resolveUser or an operator sets them. */
export interface Access {
  roles: string[]
  permissions: string[]
}

/**
 * What checking a live session's token reads besides "alive", in the same round trip: the user's
 * roles and permissions now, when this session last stepped up, and the services the user is
 * banned from. Shared, frozen values: callers copy before changing.
 */
export interface LiveAccess {
  status: 'ok'
  roles: readonly string[]
  permissions: readonly string[]
  /** When the session last proved its user with a fresh wx.login() code (ms epoch); null when never. */
  steppedUpAt: number | null
  serviceBans: readonly ServiceBan[]
}

/** A user as an operator sees it: roles and permissions, bans (the account's, then by service). */
export interface UserState extends Access {
  ban: Ban | null
  serviceBans: ServiceBan[]
}

/** The rules a new session is created under, decided inside the same atomic operation. */
export interface SessionPolicy {
  /**
   * For the new session's device type: `same` ends the user's other sessions of that type, `all`
   * every other session, `refuse` refuses the login while one of that type lives; '' none of these.
   */
  exclusive: '' | 'same' | 'all' | 'refuse'
  /** At most this many live sessions per user: the least recently refreshed end first. */
  maxSessions: number
  /** An ended session's marker lives at least this long (the access tokens' lifetime). */
  accessTtlMs: number
}

export type CreateResult = { status: 'created', ended: number } | { status: 'refused', deviceType: string } | { status: 'banned', end: SessionEnd }

/** What a session holds. `sessionKey` is WeChat's session_key: it never leaves the server. */
export interface SessionData {
  sub: string
  openid: string
  unionid?: string
  sessionKey: string
  /** Extra access-token claims from the host's resolveUser, kept for refreshes. */
  claims?: Record<string, unknown>
  createdAt: number
  /**
   * When SESSION_MAX_AGE counts from, if not from `createdAt`: a session opened from another (a
   * ticket's, a QR login's) keeps the other's, so that handing a session on never extends it.
   */
  ageFrom?: number
}

export type CodeClaim = 'claimed' | 'used' | 'pending'

/** What a rotation hands back: what the next access token says about the user. Never the session_key. */
export type TokenSubject = Pick<SessionData, 'sub' | 'openid' | 'unionid' | 'claims'>

export type RotateResult =
  | { status: 'rotated', session: TokenSubject, ttlMs: number }
  /**
   * The presented generation is one behind the session's. It is the predecessor only if the
   * successor it derives with `nonce` (the last rotation's) has the digest `currentHash`; the
   * caller checks, then answers the same successor again (`inGrace`, or not yet `delivered`: no
   * access token of the current generation was used) or revokes the session.
   */
  | { status: 'predecessor', session: TokenSubject, ttlMs: number, nonce: string, currentHash: string, inGrace: boolean, delivered: boolean }
  /** Two or more generations behind: reuse if the token is genuine, which the caller checks. */
  | { status: 'behind' }
  | { status: 'invalid' }
  /** The session was ended by another login: its tokens are told why. */
  | { status: 'ended', end: SessionEnd }

/** A session as the caller creates it; the store stamps `createdAt` with its own clock. */
export type NewSession = Omit<SessionData, 'createdAt'> & {
  device?: DeviceInfo
  /** The user's roles and permissions as resolveUser gave them: they replace the stored ones. Left out: kept. */
  access?: Access
}

/** A rotation: the presented token is current when its generation and digest are the session's. */
export interface RotateInput {
  /** The presented token's generation (a session's first token is 0). */
  generation: number
  presentedHash: string
  /** Digest of the successor, derived with `nonce`: both are stored when the token rotates. */
  nextHash: string
  nonce: string
  /** How long after a rotation its predecessor may be presented again. */
  graceMs: number
  /** Idle lifetime: each rotation renews the session to this, but never past maxAgeSec. */
  ttlSec: number
  /** Absolute lifetime of a session, counted from its creation. */
  maxAgeSec: number
}

/** A credential every gateway instance shares (a mini program's access_token), by the gateway's clock. */
export interface Credential {
  value: string
  /** ms epoch past which the value must not be used. */
  expiresAt: number
  /** ms epoch from which it should be renewed (it still works until expiresAt). */
  refreshAt: number
}

/** Sessions: created at login, rotated at refresh, checked on every request, ended at logout. */
export interface SessionsStore {
  /** Creates a session; under `policy`, ends the sessions it replaces (or refuses) in the same operation. */
  createSession: (ref: SessionRef, data: NewSession, refreshHash: string, ttlSec: number, policy?: SessionPolicy) => Promise<CreateResult>
  /** The user's live sessions. */
  listSessions: (tag: string) => Promise<SessionInfo[]>
  getSession: (ref: SessionRef) => Promise<SessionData | null>
  rotateRefresh: (ref: SessionRef, input: RotateInput) => Promise<RotateResult>
  /**
   * The user's access state when the session is alive and the token id is not blacklisted; why, when
   * another login ended it; 'revoked' otherwise. One round trip, no write; but when `generation` (the
   * rotation the token was issued with) is the session's current one and not yet marked delivered,
   * a second one marks it (once per rotation, see RotateResult's `delivered`).
   */
  checkAccess: (ref: Readonly<SessionRef>, jti: string, generation?: number) => Promise<LiveAccess | 'revoked' | SessionEnd>
  /** Ends one session: every token issued in it stops working. */
  revokeSession: (ref: SessionRef) => Promise<void>
  /** Ends every session of the user behind `tag`; returns how many there were. */
  revokeUser: (tag: string) => Promise<number>
  /**
   * Revokes one access token of a session by id, at least until it would have expired anyway (`ttlSec`);
   * the Redis store forgets the entry at the first pass over the user past that time (a kick, a ban, a
   * login that may reach the limit) or with the user's key.
   */
  blacklist: (ref: SessionRef, jti: string, ttlSec: number) => Promise<void>
  /**
   * Ends sessions of the user behind `tag` (the given ids, or all) for a reason code their tokens are
   * told (AUTH_SESSION_KICKED); returns how many ended.
   */
  kick: (tag: string, sids: string[] | 'all', reason: string, accessTtlMs: number) => Promise<number>
  /** Bans the user: every session ends (kicked, for the ban's reason), logins and tokens are refused until unbanned or `until`. */
  ban: (tag: string, ban: Ban, accessTtlMs: number) => Promise<void>
  unban: (tag: string) => Promise<void>
}

/** Access control: roles and permissions, service bans, step-up. Each change is seen by every instance's next check. */
export interface AccessStore {
  /** Replaces the user's roles and permissions (none of either: forgets them). */
  setAccess: (tag: string, access: Access) => Promise<void>
  /** The user's roles, permissions and bans. */
  userState: (tag: string) => Promise<UserState>
  /** Bans the user from one service (at most MAX_SERVICE_BANS at once); sessions live on. */
  banService: (tag: string, ban: ServiceBan) => Promise<void>
  unbanService: (tag: string, service: string) => Promise<void>
  /**
   * Marks a live session as stepped up now, with the session_key of the code that proved it: the
   * time, by the store's clock; why, when the session ended otherwise; 'revoked' when it is gone.
   */
  stepUp: (ref: SessionRef, sessionKey: string) => Promise<{ status: 'ok', at: number } | 'revoked' | SessionEnd>
  /** Remembers which user (sub) an openid of a mini program logged in as, for `ttlSec`. */
  rememberOpenid: (appid: string, openid: string, sub: string, ttlSec: number) => Promise<void>
  /** The user an openid last logged in as, while remembered; null otherwise. */
  subOfOpenid: (appid: string, openid: string) => Promise<string | null>
}

/** Login codes: each is exchanged with WeChat at most once. */
export interface LoginCodeStore {
  /** Marks a login code as being exchanged, unless it already is or was accepted. */
  claimCode: (codeId: string, pendingTtlMs: number) => Promise<CodeClaim>
  /** After the exchange: remember an accepted code, or forget one whose exchange failed. */
  settleCode: (codeId: string, accepted: boolean, usedTtlMs: number) => Promise<void>
}

/** Counters for rate limits. */
export interface CounterStore {
  /** Counts one hit of `key` in a fixed window (rate limiting); the window starts at the first hit. */
  hit: (key: string, windowMs: number) => Promise<{ current: number, ttlMs: number }>
}

/** Credentials every instance shares (WeChat's access_token), and the locks of their renewal. */
export interface CredentialStore {
  getCredential: (name: string) => Promise<Credential | null>
  /** Takes the renewal lock of a credential for `ttlMs` unless another owner holds it; true when taken. */
  lockCredential: (name: string, owner: string, ttlMs: number) => Promise<boolean>
  /** Stores a renewed credential (until it expires) and releases the lock if `owner` still holds it. */
  saveCredential: (name: string, credential: Credential, owner: string) => Promise<void>
  /** Releases the lock if `owner` still holds it (a renewal that failed). */
  unlockCredential: (name: string, owner: string) => Promise<void>
}

/** Everything the gateway keeps, in one backend. */
export interface SessionStore extends SessionsStore, AccessStore, LoginCodeStore, CounterStore, CredentialStore, HandoffStore {
  readonly kind: 'redis' | 'memory'
  /** Resolves when the store answers; rejects with STORE_UNAVAILABLE otherwise. */
  ping: () => Promise<void>
  close: () => Promise<void>
}

export type { HandoffStore, QrOutcome, QrRecord, QrState, QrStep, TakenTicket, TicketGrant } from './handoff-types.js'
