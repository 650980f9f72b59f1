// One mini program's access_token, shared by every gateway instance through the store.
// The failure every SDK had: instances renewing at once and calls failing with 40001. Here:
// - each instance keeps the token in memory and uses it until it is due for renewal;
// - concurrent callers in one instance share one renewal (single flight);
// - across instances a lock in the store lets one of them call WeChat, the others wait for the
//   token it saves (polling the store), or keep using the current one while it is still valid;
// - a call WeChat refuses with 40001/42001 renews once and is retried once (withToken).
import { setTimeout as sleep } from 'node:timers/promises'
import { WxAccessTokenRejectedError, WxTimeoutError } from './errors.js'
import type { Credential, CredentialStore } from './store/types.js'
import { randomId } from './ids.js'
import { outcomeOf } from './audit.js'
import { tokenRenewalChannel, type TokenRenewalMessage } from './diagnostics.js'
import type { StableToken } from './wechat-client.js'
import type { Logger } from './logger.js'

export interface AccessTokenManagerOptions {
  /** The store key of the token: the appid. */
  name: string
  store: CredentialStore
  /** Asks WeChat for the token (cgi-bin/stable_token), to answer by `deadline` (ms epoch). */
  fetch: (deadline: number) => Promise<StableToken>
  /** WeChat's deadline (WECHAT_TIMEOUT_MS): what one renewal, and one call made with the token, may take. */
  timeoutMs: number
  /** The store's deadline (STORE_TIMEOUT_MS): the renewal lock also covers a read and a write. */
  storeTimeoutMs: number
  log: Pick<Logger, 'warn' | 'info'>
  /** Clock for token lifetimes, in ms (tests); Date.now by default. */
  now?: () => number
}

/** A token is not handed out in its last seconds: a call made with it must still arrive in time. */
export const EXPIRY_MARGIN_MS = 30_000
/** WeChat issues a new stable token only in the last 5 minutes of the current one. */
export const RENEW_AHEAD_S = 300
const POLL_FIRST_MS = 10
const POLL_MAX_MS = 200
/** After a background renewal failed, the next waits this long, doubling up to the maximum. */
const BACKOFF_FIRST_MS = 1000
const BACKOFF_MAX_MS = 60_000

/** When a token WeChat gave with `expiresIn` seconds left at `at` is due for renewal. */
export function renewalTimes (at: number, expiresIn: number): Pick<Credential, 'expiresAt' | 'refreshAt'> {
  // Half-way at the least: a token WeChat returns with little time left is not asked for again
  // at every call (it answers the same one until its last 5 minutes).
  return { expiresAt: at + expiresIn * 1000, refreshAt: at + Math.max(expiresIn - RENEW_AHEAD_S, expiresIn / 2) * 1000 }
}

interface Flight {
  /** The token WeChat refused that this renewal replaces, if any. */
  stale: string | undefined
  promise: Promise<Credential>
}

/** Whether a token can still be handed out (not refused, not in its last seconds), and whether it is due for renewal. */
function freshness (now: () => number) {
  return {
    usable: (c: Credential | null, stale?: string): c is Credential =>
      c !== null && c.expiresAt - EXPIRY_MARGIN_MS > now() && c.value !== stale,
    due: (c: Credential): boolean => now() >= c.refreshAt
  }
}

/**
 * One renewal: the token another instance saved in the store, or, under the store's lock, a new
 * one from WeChat, saved for every instance.
 */
function createRenewal (opts: AccessTokenManagerOptions, lockTtlMs: number) {
  const now = opts.now ?? Date.now
  const { store, name, log, timeoutMs } = opts
  const { usable, due } = freshness(now)
  /** Renews from the store or from WeChat by `deadline`; `stale` is a token WeChat refused, never taken back. */
  return async function renewal (stale: string | undefined, deadline: number): Promise<Credential> {
    const owner = randomId(12)
    let wait = POLL_FIRST_MS
    for (;;) {
      const stored = await store.getCredential(name)
      if (usable(stored, stale) && !due(stored)) return stored
      // Take the lock only with time left for WeChat's answer: a request never waits twice.
      if (deadline - Date.now() >= timeoutMs / 2 && await store.lockCredential(name, owner, lockTtlMs)) {
        try {
          // Another instance may have saved one between the read and the lock.
          const again = await store.getCredential(name)
          if (usable(again, stale) && !due(again)) {
            await store.unlockCredential(name, owner)
            return again
          }
          const at = now()
          const fresh = await opts.fetch(deadline).then((token) => {
            report(name, 'ok')
            return token
          }, (err: unknown) => {
            report(name, outcomeOf(err))
            throw err
          })
          // WeChat answers the token it just refused: nothing to keep; the caller's call fails
          // (the catch below releases the lock).
          if (fresh.accessToken === stale) throw new WxAccessTokenRejectedError()
          const cred = { value: fresh.accessToken, ...renewalTimes(at, fresh.expiresIn) }
          // A token in hand is used even if the store cannot keep it (the lock then expires).
          await store.saveCredential(name, cred, owner).catch((err: Error) => {
            log.warn({ appid: name, code: (err as { code?: string }).code }, 'could not share the renewed access_token')
          })
          log.info({ appid: name, expiresIn: fresh.expiresIn }, 'WeChat access_token renewed')
          return cred
        } catch (err) {
          await store.unlockCredential(name, owner).catch(() => {})
          throw err
        }
      }
      // Another instance is renewing: the current token still works meanwhile.
      if (usable(stored, stale)) return stored
      if (Date.now() + wait >= deadline) throw new WxTimeoutError()
      await sleep(wait)
      wait = Math.min(wait * 2, POLL_MAX_MS)
    }
  }
}

/** Tells the diagnostics channel (lib/diagnostics.ts) that a renewal reached WeChat, and how it ended. */
function report (appid: string, outcome: string): void {
  if (tokenRenewalChannel.hasSubscribers) tokenRenewalChannel.publish({ appid, outcome } satisfies TokenRenewalMessage)
}

export function createAccessTokenManager (opts: AccessTokenManagerOptions) {
  const now = opts.now ?? Date.now
  const { name, log, timeoutMs } = opts
  // The holder reads the store, calls WeChat and writes the store within this.
  const lockTtlMs = timeoutMs + 2 * opts.storeTimeoutMs + 1000
  let local: Credential | null = null
  let flight: Flight | null = null
  let backoffMs = 0
  let nextBackgroundAt = 0

  const { usable, due } = freshness(now)
  const renewal = createRenewal(opts, lockTtlMs)

  function start (stale: string | undefined, deadline: number): Flight {
    const f: Flight = {
      stale,
      promise: renewal(stale, deadline).then((cred) => {
        local = cred
        return cred
      }).finally(() => { if (flight === f) flight = null })
    }
    flight = f
    return f
  }

  /** One renewal at a time in this process; every caller meanwhile gets its result. */
  async function renew (deadline: number, stale?: string): Promise<Credential> {
    const joined = flight ?? start(stale, deadline)
    const cred = await joined.promise
    // Joined a renewal that began before WeChat refused `stale` and came back with it: one more.
    if (stale !== undefined && cred.value === stale && joined.stale !== stale) {
      return await (flight ?? start(stale, deadline)).promise
    }
    return cred
  }

  /** The current access_token, by `deadline`; renewed ahead of its expiry without making the caller wait. */
  async function get (deadline = Date.now() + lockTtlMs): Promise<string> {
    if (usable(local)) {
      if (due(local) && flight === null && Date.now() >= nextBackgroundAt) {
        renew(Date.now() + lockTtlMs).then(() => { backoffMs = 0 }, (err: Error) => {
          // Retried by a later caller, after a growing pause: a failing WeChat is not hammered.
          backoffMs = Math.min(BACKOFF_MAX_MS, backoffMs === 0 ? BACKOFF_FIRST_MS : backoffMs * 2)
          nextBackgroundAt = Date.now() + backoffMs
          log.warn({ appid: name, code: (err as { code?: string }).code, retryInMs: backoffMs }, 'access_token renewal failed; the current one is still valid')
        })
      }
      return local.value
    }
    return (await renew(deadline)).value
  }

  /**
   * Runs a WeChat call with the token; when WeChat refuses the token, renews once and retries once.
   * All of it within twice WECHAT_TIMEOUT_MS: getting the token, then the call (its retry included).
   */
  async function withToken<T> (call: (token: string, deadline: number) => Promise<T>): Promise<T> {
    const deadline = Date.now() + 2 * timeoutMs
    const token = await get(deadline)
    try {
      return await call(token, deadline)
    } catch (err) {
      if ((err as { code?: string }).code !== 'WX_ACCESS_TOKEN_REJECTED') throw err
      log.warn({ appid: name }, 'WeChat refused the access_token: renewing it once and retrying')
      return await call((await renew(deadline, token)).value, deadline)
    }
  }

  return { get, withToken }
}

export type AccessTokenManager = ReturnType<typeof createAccessTokenManager>
