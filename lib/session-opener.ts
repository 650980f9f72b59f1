// Opening a session for a user under the session rules (device types, exclusive types, the limit,
// bans), decided in the store's one atomic operation, and its first token pair. Logging in (with a
// wx.login() code or H5), ticket exchange and QR collect all open sessions this way.
import { AuthDeviceTypeUnknownError, AuthHandoffRefusedError, AuthTokenRevokedError, deviceInUse, sessionEnded } from './errors.js'
import { digest, newSessionId, userTag, type SessionRef } from './ids.js'
import { sessionRules } from './login.js'
import type { RefreshTokens } from './refresh-tokens.js'
import { outcomeOf, type Audit, type SessionVia } from './audit.js'
import type { AccessClaims } from './schemas.js'
import type { LoginDevice, OpenedPair, PairOf, SessionsDeps } from './sessions-deps.js'
import type { DeviceInfo, NewSession } from './store/types.js'

/**
 * `opening` (a session for a one-time grant already taken from the store: a ticket, a QR login's
 * collect), or when it fails, `putBack` first, so that a retry works: nothing was given. That covers
 * a refusal the user can fix (AUTH_DEVICE_IN_USE: sign out there, then retry) and the store failing
 * (STORE_UNAVAILABLE); a ban (AUTH_ACCOUNT_BANNED) keeps the grant spent. A put-back that fails too
 * (the store still down) loses the grant; the client is told the open's error.
 */
export async function orPutBack<T> (opening: Promise<T>, putBack: () => Promise<unknown>): Promise<T> {
  try {
    return await opening
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'AUTH_ACCOUNT_BANNED') await putBack().catch(() => {})
    throw err
  }
}

/**
 * `opening` awaited, its failure told first with its code: the store failing once the grant is taken
 * (WeChat accepted the code, a ticket or QR login was spent), which the callers, auditing only what
 * failed before, would not tell.
 */
async function told<T> (opening: Promise<T>, tell: (outcome: string) => void): Promise<T> {
  try {
    return await opening
  } catch (err) {
    tell(outcomeOf(err))
    throw err
  }
}

/** Whole seconds left before SESSION_MAX_AGE from `ageFrom` (ms); unbounded without one. */
const ageLeftSec = (ageFrom: number | undefined, maxAgeSec: number): number =>
  ageFrom === undefined ? Infinity : Math.floor((ageFrom + maxAgeSec * 1000 - Date.now()) / 1000)

export function createSessionOpener ({ store, config, audit }: Pick<SessionsDeps, 'store' | 'config' | 'audit'>, refreshTokenOf: RefreshTokens, pair: PairOf) {
  const rules = sessionRules(config)
  // REFRESH_COOKIE's device types: their sessions hand their login on to no other device.
  const cookieTypes = new Set(config.refreshCookieTypes ?? [])

  /** AUTH_DEVICE_TYPE_UNKNOWN unless `deviceType` is one of DEVICE_TYPES. */
  function checkDeviceType (deviceType: string): void {
    if (!rules.types.includes(deviceType)) throw new AuthDeviceTypeUnknownError(rules.types.join(', '))
  }

  /**
   * AUTH_HANDOFF_REFUSED when `user`'s session is of a REFRESH_COOKIE type: it may not issue a ticket
   * or scan and confirm a QR login. Either grant is a bearer one, redeemable from anywhere, so a script
   * in the page holding only the access token would carry a new long-lived session out of the page
   * (a `web` ticket too: its cookie lands in the jar of whoever exchanges it), which is what cookie mode
   * forbids. Reads the user's sessions (the token does not say its device type) only in cookie mode.
   */
  async function checkHandoff (user: AccessClaims): Promise<void> {
    if (cookieTypes.size === 0) return
    const own = (await store.listSessions(userTag(user.aud, user.sub))).find((s) => s.sid === user.sid)
    if (own === undefined) throw new AuthTokenRevokedError()
    if (cookieTypes.has(own.deviceType)) throw Object.assign(new AuthHandoffRefusedError(own.deviceType), { detail: { deviceType: own.deviceType } })
  }

  /**
   * Opens a session of `session.sub` in mini program `appid`; `alongside` is awaited with the store's
   * operation (login remembers the user's openid meanwhile). AUTH_DEVICE_IN_USE or the ban's code
   * when the rules refuse it.
   */
  async function openSession (appid: string, opened: NewSession & { device: DeviceInfo & Pick<LoginDevice, 'request'> }, alongside?: Promise<unknown>, via: SessionVia = 'login'): Promise<OpenedPair> {
    // The request is the audit events', not the session's.
    const { request, ...device } = opened.device
    const session = { ...opened, device }
    const { deviceType } = device
    const ref: SessionRef = { tag: userTag(appid, session.sub), sid: newSessionId() }
    const refreshToken = refreshTokenOf.first(ref)
    // A session opened from another ends at the other's SESSION_MAX_AGE (ageFrom) at the latest.
    const ttl = Math.max(1, Math.min(config.REFRESH_TOKEN_TTL, config.SESSION_MAX_AGE, ageLeftSec(session.ageFrom, config.SESSION_MAX_AGE)))
    // The session.open event: one literal of one shape, what each outcome adds set on it (a spread of a
    // conditional object cost every login about 1 µs: npm run bench:ab's login flow under --cpu-prof).
    const eventOf = (outcome: string): Parameters<Audit>[0] => ({ event: 'session.open', appid, userId: session.sub, deviceType, via, outcome })
    const [created] = await told(Promise.all([store.createSession(ref, session, digest(refreshToken), ttl, {
      exclusive: rules.exclusiveTypes.has(deviceType) ? rules.mode : '',
      maxSessions: rules.maxSessions,
      accessTtlMs: rules.accessTtlSec * 1000
    }), alongside]), (outcome) => audit?.(eventOf(outcome), request))
    if (created.status === 'refused') {
      audit?.(eventOf('AUTH_DEVICE_IN_USE'), request)
      throw deviceInUse(created.deviceType)
    }
    if (created.status === 'banned') {
      const banned = eventOf('AUTH_ACCOUNT_BANNED')
      banned.reason = created.end.by
      audit?.(banned, request)
      throw sessionEnded(created.end)
    }
    const done = eventOf('ok')
    done.sessionId = ref.sid
    if (created.ended > 0) done.reason = `ended ${created.ended}`
    audit?.(done, request)
    return Object.assign(pair(appid, session, ref.sid, refreshToken, ttl), { deviceType })
  }

  /**
   * Opens a session for the user of a live session `from` (a ticket's issuer, a QR login's
   * confirmer), on another device: the same openid, unionid, claims and WeChat session_key (shared:
   * a new wx.login() of either replaces it for both at WeChat). Null when `from` has ended.
   */
  async function openSessionLike (appid: string, from: SessionRef, device: LoginDevice & DeviceInfo, via: SessionVia): Promise<OpenedPair | null> {
    const source = await store.getSession(from)
    // Past its SESSION_MAX_AGE (its key not expired yet), `from` has ended: it hands nothing on.
    const ageFrom = source === null ? 0 : source.ageFrom ?? source.createdAt
    if (source === null || ageLeftSec(ageFrom, config.SESSION_MAX_AGE) < 1) return null
    const { createdAt: _createdAt, ...data } = source
    // Its SESSION_MAX_AGE counts from the source's: handing a session on never extends it.
    return await openSession(appid, { ...data, ageFrom, device }, undefined, via)
  }

  return { checkDeviceType, checkHandoff, openSession, openSessionLike }
}

export type SessionOpener = ReturnType<typeof createSessionOpener>
