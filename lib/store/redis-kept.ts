// The sweep of users' keys kept for good. A key kept by roles an operator set or a ban without end
// has no TTL, and its expired sessions (their session_key too) went only at the user's next write
// (a login, a refresh, an operator's change): an operator who never came back kept them for good.
// Each operator's change enters the user in an index first (a sorted set in a slot of its own, by when
// to visit the user next); a sweep, one gateway at a time (a lock), visits the users due, deletes what
// expired (fixTtl) and says when to come back: when the first of what the key still holds expires,
// and at least every KEPT_REVISIT_MS while a login may start a session there unseen. A user whose key
// is no longer kept for good leaves the index. Scripts: redis-kept-scripts.ts.
import { randomId } from '../ids.js'
import { throttledWarning } from '../throttled-warning.js'
import type { Context } from './redis-context.js'
import { releaseLock, takeLock } from './redis-locks.js'

/** How long a key kept by roles or a service ban goes unvisited at most: so how long, at most, an expired session's fields outlive it there. */
export const KEPT_REVISIT_MS = 3_600_000
/** How often each gateway tries to sweep; one at a time sweeps, under a lock that lives as long. */
export const KEPT_SWEEP_EVERY_MS = 60_000
/** Users read from the index at a time; a sweep goes on to the next batch for half a lock's life at most. */
export const KEPT_SWEEP_BATCH = 200
/** A user whose visit failed (its node down, a key of another type) is tried again this much later, not at every sweep. */
export const KEPT_RETRY_MS = 60_000

/** Told of failures (a user's visit, or a sweep's lock or index), how many since the last call, and the first error (its message holds no key or argument: deadlines.ts). */
export type SweepFailed = (failed: number, first: Error) => void

/** The index's entries, the sweep that visits them: what the store is given (redis.ts). */
export function keptUsers (ctx: Context, timeoutMs: number, onFailed?: SweepFailed) {
  return { ...keptIndex(ctx, timeoutMs), ...keptSweeper(ctx, timeoutMs, onFailed) }
}

/** How users enter the index. */
function keptIndex ({ keys, run, guard }: Context, timeoutMs: number) {
  /**
   * Enters the user in the index, due after twice the store's deadline (an operator's change made
   * meanwhile has landed, or its caller was told it failed and it was not sent), at a new version: a
   * sweep that read the entry before cannot drop the user over it. `ifAbsent` (a login into a key
   * kept for good): only a user the index does not hold, leaving a scheduled visit as it is.
   */
  async function keep (tag: string, ifAbsent = false): Promise<void> {
    await run('wxauthKeep', keys.kept, tag, 2 * timeoutMs, ifAbsent ? '1' : '0')
  }

  /**
   * An operator's change of a user's key, with the user in the index around it: entered before (if
   * that fails, the change is not made), and the change not sent once the store's deadline has
   * passed (its caller is told it failed, and a sweep may soon read the entry); entered again after,
   * not waited for, at a new version, so that a verdict a sweep took meanwhile is not written. With
   * REDIS_WAIT_REPLICAS the change's WAIT covers the entry on one master (one replication stream, the
   * entry written first); on a Cluster the index is on a master of its own, and a failover there may
   * lose the entry: a visit missed, not the change (the user's next login, refresh or change enters it).
   */
  async function changing<T> (tag: string, write: () => Promise<T>): Promise<T> {
    const started = Date.now()
    await keep(tag)
    if (Date.now() - started >= timeoutMs) throw new Error('the sweep\'s index answered after the deadline: the change was not sent')
    const reply = await write()
    enter(tag)
    return reply
  }

  /** The user into the index, not waited for: after an operator's change (one that landed late too), and `ifAbsent` after a login or a refresh in a key kept for good. */
  function enter (tag: string, ifAbsent = false): void {
    guard(async () => { await keep(tag, ifAbsent) }).catch(() => {})
  }

  return { changing, enter }
}

/** The sweep: one gateway at a time (the lock), batch after batch of the users due. */
function keptSweeper (ctx: Context, timeoutMs: number, onFailed?: SweepFailed) {
  const { keys, run, guard } = ctx
  const [index, versions] = keys.kept
  let stopped = false
  let running: Promise<number> | undefined

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

  /** Batch after batch, for half the lock's life at most (checked before each visit: a visit may take two deadlines). */
  async function sweepLocked (): Promise<number> {
    const until = Date.now() + KEPT_SWEEP_EVERY_MS / 2
    let visited = 0
    const failures: Error[] = []
    const going = (): boolean => !stopped && Date.now() < until
    try {
      for (let full = true; full && going();) {
        const due = await guard(async () => await run('wxauthKeptDue', [index, versions], KEPT_SWEEP_BATCH)) as string[]
        for (let i = 0; i < due.length; i += 2) {
          if (!going()) return visited
          const failure = await visit(String(due[i]), String(due[i + 1]))
          if (failure !== null) failures.push(failure)
          visited++
        }
        full = due.length / 2 === KEPT_SWEEP_BATCH
      }
    } finally {
      if (failures.length > 0 && !stopped) onFailed?.(failures.length, failures[0] as Error)
    }
    return visited
  }

  /** Visits the users due, unless this store or another gateway is sweeping. -> how many were visited (or tried). */
  async function sweep (): Promise<number> {
    if (stopped || running !== undefined) return 0
    const owner = randomId(9)
    const release = async (): Promise<void> => { await releaseLock(ctx, keys.keptLock, owner).catch(() => {}) }
    // A lock taken after this sweep gave up (a Redis that hung) is let go at once, not left a minute.
    if (!await takeLock(ctx, keys.keptLock, owner, KEPT_SWEEP_EVERY_MS)) return 0
    if (stopped || running !== undefined) {
      await release()
      return 0
    }
    const mine = sweepLocked()
    running = mine
    try {
      return await mine
    } finally {
      if (running === mine) running = undefined
      await release()
    }
  }

  /** What the store's timer runs: a sweep whose failure is told, never thrown. */
  function tick (): void {
    sweep().catch((err: unknown) => { if (!stopped) onFailed?.(1, err as Error) })
  }

  /** No sweep starts after this; the one running stops before its next visit, and is waited for a deadline at most. */
  async function stop (): Promise<void> {
    stopped = true
    if (running === undefined) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([running.catch(() => {}), new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs) })])
    clearTimeout(timer)
  }

  return { sweep, tick, stop }
}

/** A warning for the log at most every `everyMs`, with the failures counted since the last. */
export function sweepWarning (warn: (msg: string) => void, everyMs = 600_000): SweepFailed {
  return throttledWarning(everyMs, (count, first: Error) => {
    const cause = first.cause instanceof Error ? `: ${first.cause.message}` : ''
    warn(`the sweep of users' keys kept for good failed ${count} time(s) since the last warning (a user's visit, tried again a minute later, or a whole sweep; first: ${first.message}${cause}): expired sessions in those keys stay until a visit succeeds`)
  })
}
