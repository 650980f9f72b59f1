// What the host (or an operator, through the admin API) does to a user: end sessions (kick), ban the
// account or one service, set roles and permissions. Told to the user's tokens with their own codes
// (AUTH_SESSION_KICKED, AUTH_ACCOUNT_BANNED), atomic in the store, seen by every instance at once.
import { Value } from '@sinclair/typebox/value'
import { AccessInput, Openid, ReasonCode, ServiceName, SessionParams, UserId } from './access-schemas.js'
import { outcomeOf, type RequestContext } from './audit.js'
import { ArgumentError, UserNotFoundError } from './errors.js'
import { userTag } from './ids.js'
import { sessionRules } from './login.js'
import type { SessionsDeps } from './sessions-deps.js'
import type { Access, SessionInfo, UserState } from './store/types.js'

/**
 * A user as the host or an operator names one: the mini program and the user id (the tokens' `aud`
 * and `sub`), or the mini program and the user's openid there.
 */
export type UserName = { appid: string, sub: string } | { appid: string, openid: string }

function checked<T> (schema: Parameters<typeof Value.Check>[0], value: unknown, what: string): T {
  if (!Value.Check(schema, value)) throw new ArgumentError(`${what}: ${Value.Errors(schema, value).First()?.message ?? 'invalid'}`)
  return value as T
}
const reasonCode = (reason: unknown): string => checked(ReasonCode, reason, 'a reason code is 1 to 32 of A-Z a-z 0-9 _ . : -')

// The last time RFC 3339 (four-digit years) can write: a later ban's end could not be answered.
export const LATEST_UNTIL = Date.UTC(9999, 11, 31, 23, 59, 59, 999)
/** Whether a ban may end at `until` (ms): in the future, and writable as a date-time. */
export const banEndAllowed = (until: number, now = Date.now()): boolean => until > now && until <= LATEST_UNTIL
/** Why a ban's end was refused. */
export const BAN_END_RULE = 'until must be a time in the future, at most 9999-12-31T23:59:59.999Z'

type ActionDeps = Pick<SessionsDeps, 'store' | 'wechat' | 'resolveUser' | 'audit'>
/** What an action was asked, for its audit event: its reason, the session it names, the HTTP request. */
interface Asked { reason: string, sessionId?: string | undefined, request?: RequestContext | undefined }

/** How an action finds the user a name means, and audits the attempts that fail. */
function userActions ({ store, wechat, resolveUser, audit }: ActionDeps) {
  /** A name's mini program and its checked id: a malformed one is the caller's error, nothing was tried. */
  function named (user: UserName): { appid: string, sub: string } | { appid: string, openid: string } {
    const appid = wechat.appOf(user.appid)
    return 'sub' in user ? { appid, sub: checked<string>(UserId, user.sub, 'sub') } : { appid, openid: checked<string>(Openid, user.openid, 'openid') }
  }

  /** The user id behind a name. By openid: the user it last logged in as (the openid itself by default). */
  async function subOf (user: ReturnType<typeof named>): Promise<string> {
    if ('sub' in user) return user.sub
    const known = await store.subOfOpenid(user.appid, user.openid)
    if (known !== null) return known
    if (resolveUser === undefined) return user.openid
    throw new UserNotFoundError()
  }

  /**
   * Runs `act` on the user `user` names, and audits it as `event`: done (`act` may tell a `reason` of
   * its own), or failed once the name is checked (USER_NOT_FOUND, SERVICE_BANS_FULL, STORE_UNAVAILABLE,
   * a write that may still have been applied) with its code: the trail shows the attempts that failed
   * too. Each with what was asked (`reason`, `sessionId`).
   */
  async function acting<T> (event: 'kick' | 'ban' | 'unban' | 'access.set', user: UserName, asked: Asked, act: (appid: string, sub: string) => Promise<[T, string?]>): Promise<T> {
    const name = named(user)
    const { appid } = name
    const what = { ...(asked.sessionId !== undefined ? { sessionId: asked.sessionId } : {}), reason: asked.reason }
    let sub: string | undefined
    let done: [T, string?]
    try {
      sub = await subOf(name)
      done = await act(appid, sub)
    } catch (err) {
      audit?.({ event, outcome: outcomeOf(err), appid, ...(sub !== undefined ? { userId: sub } : {}), ...what }, asked.request)
      throw err
    }
    audit?.({ event, outcome: 'ok', appid, userId: sub, ...what, reason: done[1] ?? asked.reason }, asked.request)
    return done[0]
  }

  return { named, subOf, acting }
}

export function createModeration ({ store, config, wechat, resolveUser, audit }: Pick<SessionsDeps, 'store' | 'config' | 'wechat' | 'resolveUser' | 'audit'>) {
  const accessTtlMs = sessionRules(config).accessTtlSec * 1000

  const { named, subOf, acting } = userActions({ store, wechat, resolveUser, audit })

  /**
   * Ends a user's sessions (one by id, or all) for a reason code their tokens are told with
   * AUTH_SESSION_KICKED; returns how many ended.
   */
  async function kick (user: UserName, opts: { sid?: string, reason?: string, request?: RequestContext } = {}): Promise<number> {
    const reason = reasonCode(opts.reason ?? 'kicked')
    // A session id as the gateway makes them: never '*', which the Redis script reads as "all".
    const sid = opts.sid === undefined ? undefined : checked<string>(SessionParams.properties.sid, opts.sid, 'kick: sid')
    return await acting('kick', user, { reason, sessionId: sid, request: opts.request }, async (appid, sub) => {
      const ended = await store.kick(userTag(appid, sub), sid === undefined ? 'all' : [sid], reason, accessTtlMs)
      return [ended, `${reason}, ended ${ended}`]
    })
  }

  /**
   * Bans a user on every instance at once until unban() or `until`. The account: its sessions end,
   * and logins, refreshes and requests get AUTH_ACCOUNT_BANNED (403, reason code, `until`). One
   * `service` only: sessions live on, and routes that name the service (authorize) refuse.
   */
  async function ban (user: UserName, opts: { reason: string, until?: Date | number | string, service?: string, request?: RequestContext }): Promise<void> {
    const until = opts.until === undefined ? null : new Date(opts.until).getTime()
    if (until !== null && !banEndAllowed(until)) throw new ArgumentError(`ban: ${BAN_END_RULE}`)
    const reason = reasonCode(opts.reason)
    const service = opts.service === undefined ? undefined : checked<string>(ServiceName, opts.service, 'ban: service')
    const what = [reason, service ?? 'account', until === null ? 'for good' : `until ${new Date(until).toISOString()}`].join(', ')
    await acting('ban', user, { reason: what, request: opts.request }, async (appid, sub) => {
      if (service === undefined) await store.ban(userTag(appid, sub), { until, reason }, accessTtlMs)
      else await store.banService(userTag(appid, sub), { service, until, reason })
      return [undefined]
    })
  }

  /** Lifts the account's ban, or only the ban from `service`. */
  async function unban (user: UserName, opts: { service?: string, request?: RequestContext } = {}): Promise<void> {
    const service = opts.service === undefined ? undefined : checked<string>(ServiceName, opts.service, 'unban: service')
    await acting('unban', user, { reason: service ?? 'account', request: opts.request }, async (appid, sub) => {
      if (service === undefined) await store.unban(userTag(appid, sub))
      else await store.unbanService(userTag(appid, sub), service)
      return [undefined]
    })
  }

  /** Replaces a user's roles and permissions: every instance's next request sees them. */
  async function setAccess (user: UserName, access: Partial<Access>, request?: RequestContext): Promise<void> {
    const value = checked<Access>(AccessInput, { roles: access.roles ?? [], permissions: access.permissions ?? [] }, 'setAccess')
    const reason = `roles ${value.roles.join(',') || '-'}; permissions ${value.permissions.join(',') || '-'}`
    await acting('access.set', user, { reason, request }, async (appid, sub) => {
      await store.setAccess(userTag(appid, sub), value)
      return [undefined]
    })
  }

  /** Everything about a user an operator may see: never a session_key or a token. */
  async function userState (user: UserName): Promise<UserState & { appid: string, sub: string, sessions: SessionInfo[] }> {
    const name = named(user)
    const { appid } = name
    const sub = await subOf(name)
    const tag = userTag(appid, sub)
    const [state, sessions] = await Promise.all([store.userState(tag), store.listSessions(tag)])
    return { appid, sub, ...state, sessions }
  }

  return { kick, ban, unban, setAccess, userState }
}
