// Kick and ban: what the host (or an operator) does to a user's sessions, told to the user's tokens
// with their own codes (AUTH_SESSION_KICKED, AUTH_ACCOUNT_BANNED). Atomic in the store, seen by every
// instance at once.
import { userTag } from './ids.js'
import { sessionRules } from './login.js'
import type { SessionsDeps } from './sessions-deps.js'

/** A user as the host names one: the mini program and the user id (the tokens' `aud` and `sub`). */
export interface UserName {
  appid: string
  sub: string
}

// A reason code reaches clients in an error's detail: short and plain, never free text.
const REASON_CODE = /^[A-Za-z0-9_.:-]{1,32}$/
function reasonCode (reason: string): string {
  if (!REASON_CODE.test(reason)) throw new TypeError('a reason code is 1 to 32 of A-Z a-z 0-9 _ . : -')
  return reason
}

export function createModeration ({ store, config }: Pick<SessionsDeps, 'store' | 'config'>) {
  const accessTtlMs = sessionRules(config).accessTtlSec * 1000
  const tagOf = (user: UserName): string => userTag(user.appid, user.sub)

  /**
   * Ends a user's sessions (one by id, or all) for a reason code their tokens are told with
   * AUTH_SESSION_KICKED; returns how many ended. For the host and operators.
   */
  async function kick (user: UserName, opts: { sid?: string, reason?: string } = {}): Promise<number> {
    return await store.kick(tagOf(user), opts.sid === undefined ? 'all' : [opts.sid], reasonCode(opts.reason ?? 'kicked'), accessTtlMs)
  }

  /**
   * Bans a user on every instance at once: their sessions end, and logins, refreshes and requests
   * get AUTH_ACCOUNT_BANNED (403, with the reason code and `until`) until unban() or `until`.
   */
  async function ban (user: UserName, opts: { reason: string, until?: Date | number }): Promise<void> {
    const until = opts.until === undefined ? null : new Date(opts.until).getTime()
    if (until !== null && !(until > Date.now())) throw new TypeError('ban: until must be a time in the future')
    await store.ban(tagOf(user), { until, reason: reasonCode(opts.reason) }, accessTtlMs)
  }

  async function unban (user: UserName): Promise<void> {
    await store.unban(tagOf(user))
  }

  return { kick, ban, unban }
}
