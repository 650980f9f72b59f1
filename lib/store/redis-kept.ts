// The sweep of users' keys kept for good. A key kept by roles an operator set or a ban without end
// has no TTL, and its expired sessions (their session_key too) went only at the user's next write
// (a login, a refresh, an operator's change): an operator who never came back kept them for good.
// Each operator's change that can keep a key for good enters the user in an index (a sorted set in a
// slot of its own, by when to visit the user next); a sweep, one gateway at a time (a lock), visits
// the users due, deletes what expired (fixTtl) and says when to come back: when the first of what the
// key still holds expires, and at least every KEPT_REVISIT_MS while a login may start a session there
// unseen. A user whose key is no longer kept for good leaves the index. Scripts: redis-kept-scripts.ts.
import { randomId } from '../ids.js'
import type { Context } from './redis-context.js'

/** How long a key kept by roles or a service ban goes unvisited at most: so how long, at most, an expired session's fields outlive it there. */
export const KEPT_REVISIT_MS = 3_600_000
/** How often each gateway tries to sweep (one at a time sweeps: the lock). */
export const KEPT_SWEEP_EVERY_MS = 60_000
/** At most this many users visited by one sweep, one after another: a bounded load on Redis. */
export const KEPT_SWEEP_BATCH = 200
/** The lock outlives a sweep of KEPT_SWEEP_BATCH users at the store's deadline each, and a gateway that died sweeping. */
const lockTtlMs = (timeoutMs: number): number => Math.max(KEPT_SWEEP_EVERY_MS, (KEPT_SWEEP_BATCH + 3) * timeoutMs)

export function keptUsers ({ keys, send, run, guard }: Context, timeoutMs: number) {
  /** Enters the user in the index, due now, at a new version. Called after the operator's change is written: a sweep that read the key before cannot then drop the user (its version is old). */
  async function keep (tag: string): Promise<void> {
    await run('wxauthKeep', keys.kept, tag)
  }

  /** Visits the users due, if no other gateway is sweeping. -> how many were visited. */
  async function sweep (): Promise<number> {
    const owner = randomId(9)
    const release = async (): Promise<void> => { await guard(async () => await run('wxauthDeleteIfEquals', [keys.keptLock], owner)).catch(() => {}) }
    // A lock taken after this sweep gave up (a Redis that hung) is let go at once, not left a minute.
    const locked = await guard(async () => await send(keys.keptLock, ['SET', keys.keptLock, owner, 'PX', String(lockTtlMs(timeoutMs)), 'NX']),
      (late) => { if (late === 'OK') release().catch(() => {}) })
    if (locked !== 'OK') return 0
    try {
      const [index, versions] = keys.kept
      const due = await guard(async () => await run('wxauthKeptDue', [index, versions], KEPT_SWEEP_BATCH)) as string[]
      for (let i = 0; i < due.length; i += 2) {
        const tag = String(due[i])
        const version = String(due[i + 1])
        const next = await guard(async () => await run('wxauthSweepUser', [keys.user(tag)], KEPT_REVISIT_MS))
        await guard(async () => await run('wxauthKeptNext', [index, versions], tag, version, String(next)))
      }
      return due.length / 2
    } finally {
      await release()
    }
  }

  return { keep, sweep }
}
