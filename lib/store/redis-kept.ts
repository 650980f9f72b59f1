// The sweep of users' keys kept for good. A key kept by roles an operator set or a ban without end
// has no TTL, and its expired sessions (their session_key too) went only at the user's next write
// (a login, a refresh, an operator's change): an operator who never came back kept them for good.
// Each operator's change enters the user in an index first (a sorted set in a slot of its own, by when
// to visit the user next); a sweep, one gateway at a time (a lock), visits the users due, deletes what
// expired (fixTtl) and says when to come back: when the first of what the key still holds expires,
// and at least every KEPT_REVISIT_MS while a login may start a session there unseen. A user whose key
// is no longer kept for good leaves the index. Scripts: redis-kept-scripts.ts.
import { randomId } from '../ids.js'
import type { Context } from './redis-context.js'

/** How long a key kept by roles or a service ban goes unvisited at most: so how long, at most, an expired session's fields outlive it there. */
export const KEPT_REVISIT_MS = 3_600_000
/** How often each gateway tries to sweep; one at a time sweeps, under a lock that lives as long. */
export const KEPT_SWEEP_EVERY_MS = 60_000
/** Users read from the index at a time; a sweep goes on to the next batch for half a lock's life at most. */
export const KEPT_SWEEP_BATCH = 200
/** A user whose visit failed (its node down, a key of another type) is tried again this much later, not at every sweep. */
export const KEPT_RETRY_MS = 60_000

/** Told once per sweep that had failures: how many visits failed, and the first error (its message holds no key or argument: deadlines.ts). */
export type SweepFailed = (failed: number, first: Error) => void

export function keptUsers ({ keys, send, run, guard }: Context, timeoutMs: number, onFailed?: SweepFailed) {
  const [index, versions] = keys.kept
  let stopped = false
  let running: Promise<number> | undefined

  /**
   * Enters the user in the index before an operator's change is written, due once the change has
   * landed or failed (the store's deadline), at a new version: a sweep that read the entry before
   * cannot drop the user over it. If this fails, the change is not made.
   */
  async function keep (tag: string): Promise<void> {
    await run('wxauthKeep', keys.kept, tag, timeoutMs)
  }

  /** Visits one user and writes the verdict; a failure of the visit schedules a retry, one of the index ends the sweep. */
  async function visit (tag: string, version: string): Promise<Error | null> {
    let next: unknown = 'retry'
    let failure: Error | null = null
    try {
      next = await guard(async () => await run('wxauthSweepUser', [keys.user(tag)], KEPT_REVISIT_MS))
    } catch (err) {
      failure = err as Error
    }
    await guard(async () => await run('wxauthKeptNext', [index, versions], tag, version, String(next), KEPT_RETRY_MS))
    return failure
  }

  async function sweepLocked (): Promise<number> {
    const until = Date.now() + KEPT_SWEEP_EVERY_MS / 2
    let visited = 0
    const failures: Error[] = []
    try {
      for (let full = true; full && Date.now() < until;) {
        const due = await guard(async () => await run('wxauthKeptDue', [index, versions], KEPT_SWEEP_BATCH)) as string[]
        for (let i = 0; i < due.length; i += 2) {
          if (stopped) return visited
          const failure = await visit(String(due[i]), String(due[i + 1]))
          if (failure !== null) failures.push(failure)
          visited++
        }
        full = due.length / 2 === KEPT_SWEEP_BATCH
      }
    } finally {
      if (failures.length > 0) onFailed?.(failures.length, failures[0] as Error)
    }
    return visited
  }

  /** Visits the users due, if no other gateway is sweeping. -> how many were visited. */
  async function sweep (): Promise<number> {
    if (stopped) return 0
    const owner = randomId(9)
    const release = async (): Promise<void> => { await guard(async () => await run('wxauthDeleteIfEquals', [keys.keptLock], owner)).catch(() => {}) }
    // A lock taken after this sweep gave up (a Redis that hung) is let go at once, not left a minute.
    const locked = await guard(async () => await send(keys.keptLock, ['SET', keys.keptLock, owner, 'PX', String(KEPT_SWEEP_EVERY_MS), 'NX']),
      (late) => { if (late === 'OK') release().catch(() => {}) })
    if (locked !== 'OK') return 0
    running = sweepLocked().finally(release)
    try {
      return await running
    } finally {
      running = undefined
    }
  }

  /** No sweep starts after this; the one running stops after its current visit, and is waited for. */
  async function stop (): Promise<void> {
    stopped = true
    await running?.catch(() => {})
  }

  return { keep, sweep, stop }
}

/** A warning for the log at most every `everyMs`, with the failures counted since the last. */
export function sweepWarning (warn: (msg: string) => void, everyMs = 600_000): SweepFailed {
  let last = -Infinity
  let count = 0
  return (failed, first) => {
    count += failed
    const now = Date.now()
    if (now - last < everyMs) return
    const cause = first.cause instanceof Error ? `: ${first.cause.message}` : ''
    warn(`the sweep of users' keys kept for good could not visit ${count} user(s) since the last warning (first: ${first.message}${cause}); each is tried again a minute later, and their expired sessions stay until then`)
    last = now
    count = 0
  }
}
