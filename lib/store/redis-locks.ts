// Locks and claims in Redis: a key set with NX for its owner's value, released by that owner only. A
// lock that answers after the store's deadline (the caller was told 503 STORE_UNAVAILABLE, a Redis
// that hung) is let go at once, not left to hold everyone off for its life: the access_token renewal's
// lock, the sweep's lock, and a login code's claim.
import type { Context } from './redis-context.js'

type LockContext = Pick<Context, 'send' | 'run' | 'guard'>

/**
 * Deletes `key` if it still holds `value`, not waited for, never failing: a lock or claim answered too
 * late. Under the store's deadline, so that closing the store waits for it (deadlines.ts drain).
 */
export const letGo = ({ run, guard }: Pick<Context, 'run' | 'guard'>, key: string, value: string): void => {
  guard(async () => await run('wxauthDeleteIfEquals', [key], value)).catch(() => {})
}

/** Takes `key` for `owner` for `ttlMs` by the store's deadline. -> whether `owner` holds it */
export async function takeLock (ctx: LockContext, key: string, owner: string, ttlMs: number): Promise<boolean> {
  return await ctx.guard(async () => await ctx.send(key, ['SET', key, owner, 'PX', String(ttlMs), 'NX']) === 'OK',
    (locked) => { if (locked) letGo(ctx, key, owner) })
}

/** Releases `key` if `owner` still holds it. */
export async function releaseLock ({ run, guard }: LockContext, key: string, owner: string): Promise<void> {
  await guard(async () => await run('wxauthDeleteIfEquals', [key], owner))
}
