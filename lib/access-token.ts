// One mini program's access_token, shared by every gateway instance through the store.
// The failure every SDK had: instances renewing at once and calls failing with 40001. Here:
// - each instance keeps the token in memory and uses it until it is due for renewal;
// - concurrent callers in one instance share one renewal (single flight);
// - across instances a lock in the store lets one of them call WeChat, the others wait for the
//   token it saves (polling the store), or keep using the current one while it is still valid;
// - a call WeChat refuses with 40001/42001 renews once and is retried once (withToken).
import { setTimeout as sleep } from 'node:timers/promises'
import { WxTimeoutError } from './errors.js'
import type { Credential, SessionStore } from './store/types.js'
import { randomId } from './tokens.js'
import type { StableToken } from './wechat-client.js'

export interface AccessTokenManagerOptions {
  /** The store key of the token: the appid. */
  name: string
  store: Pick<SessionStore, 'getCredential' | 'lockCredential' | 'saveCredential' | 'unlockCredential'>
  /** Asks WeChat for the token (cgi-bin/stable_token). */
  fetch: () => Promise<StableToken>
  /** WeChat's deadline (WECHAT_TIMEOUT_MS): the renewal lock outlives it, waiters give up after it. */
  timeoutMs: number
  log: Pick<import('fastify').FastifyBaseLogger, 'warn' | 'info'>
  /** Clock for token lifetimes, in ms (tests); Date.now by default. */
  now?: () => number
}

/** A token is not handed out in its last seconds: a call made with it must still arrive in time. */
export const EXPIRY_MARGIN_MS = 30_000
/** WeChat issues a new stable token only in the last 5 minutes of the current one. */
export const RENEW_AHEAD_S = 300
const POLL_FIRST_MS = 10
const POLL_MAX_MS = 200

/** When a token WeChat gave with `expiresIn` seconds left at `at` is due for renewal. */
export function renewalTimes (at: number, expiresIn: number): Pick<Credential, 'expiresAt' | 'refreshAt'> {
  // Half-way at the least: a token WeChat returns with little time left is not asked for again
  // at every call (it answers the same one until its last 5 minutes).
  return { expiresAt: at + expiresIn * 1000, refreshAt: at + Math.max(expiresIn - RENEW_AHEAD_S, expiresIn / 2) * 1000 }
}

export function createAccessTokenManager (opts: AccessTokenManagerOptions) {
  const now = opts.now ?? Date.now
  const { store, name, log } = opts
  const lockTtlMs = opts.timeoutMs + 1000
  let local: Credential | null = null
  let flight: Promise<Credential> | null = null

  const usable = (c: Credential | null, stale?: string): c is Credential =>
    c !== null && c.expiresAt - EXPIRY_MARGIN_MS > now() && c.value !== stale
  const due = (c: Credential): boolean => now() >= c.refreshAt

  /** Renews from the store or from WeChat; `stale` is a token WeChat refused, never taken back. */
  async function renewal (stale: string | undefined): Promise<Credential> {
    const owner = randomId(12)
    const giveUpAt = Date.now() + lockTtlMs
    let wait = POLL_FIRST_MS
    for (;;) {
      const stored = await store.getCredential(name)
      if (usable(stored, stale) && !due(stored)) return stored
      if (await store.lockCredential(name, owner, lockTtlMs)) {
        try {
          // Another instance may have saved one between the read and the lock.
          const again = await store.getCredential(name)
          if (usable(again, stale) && !due(again)) {
            await store.unlockCredential(name, owner)
            return again
          }
          const at = now()
          const fresh = await opts.fetch()
          const cred = { value: fresh.accessToken, ...renewalTimes(at, fresh.expiresIn) }
          await store.saveCredential(name, cred, owner)
          log.info({ appid: name, expiresIn: fresh.expiresIn }, 'WeChat access_token renewed')
          return cred
        } catch (err) {
          await store.unlockCredential(name, owner).catch(() => {})
          throw err
        }
      }
      // Another instance is renewing: the current token still works meanwhile.
      if (usable(stored, stale)) return stored
      if (Date.now() >= giveUpAt) throw new WxTimeoutError()
      await sleep(wait)
      wait = Math.min(wait * 2, POLL_MAX_MS)
    }
  }

  /** One renewal at a time in this process; every caller meanwhile gets its result. */
  async function renew (stale?: string): Promise<Credential> {
    const start = (): Promise<Credential> => renewal(stale).then((cred) => {
      local = cred
      return cred
    }).finally(() => { flight = null })
    flight ??= start()
    const cred = await flight
    // Joined a renewal that began before WeChat refused `stale`, and it came back with it.
    if (stale !== undefined && cred.value === stale) return await (flight ??= start())
    return cred
  }

  /** The current access_token; renewed ahead of its expiry without making the caller wait. */
  async function get (): Promise<string> {
    if (usable(local)) {
      if (due(local)) {
        renew().catch((err: Error) => { log.warn({ appid: name, code: (err as { code?: string }).code }, 'access_token renewal failed; the current one is still valid') })
      }
      return local.value
    }
    return (await renew()).value
  }

  /** Runs a WeChat call with the token; when WeChat refuses the token, renews once and retries once. */
  async function withToken<T> (call: (token: string) => Promise<T>): Promise<T> {
    const token = await get()
    try {
      return await call(token)
    } catch (err) {
      if ((err as { code?: string }).code !== 'WX_ACCESS_TOKEN_REJECTED') throw err
      log.warn({ appid: name }, 'WeChat refused the access_token: renewing it once and retrying')
      return await call((await renew(token)).value)
    }
  }

  return { get, withToken }
}

export type AccessTokenManager = ReturnType<typeof createAccessTokenManager>
