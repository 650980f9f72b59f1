// What every part of the Redis store (redis-sessions.ts, redis-control.ts, redis-handoff.ts,
// redis-access-check.ts) is built from.
import type { createDeadlines } from './deadlines.js'
import type { keyNames } from './redis-layout.js'
import type { scriptRunner } from './redis-script-runner.js'
import type { sendCommandOf } from './redis-client.js'
import type { AccessCache } from './redis-access-cache.js'

/** What every part of the store sends its commands with. */
export interface Context {
  keys: ReturnType<typeof keyNames>
  send: ReturnType<typeof sendCommandOf>
  run: ReturnType<typeof scriptRunner>
  guard: ReturnType<typeof createDeadlines>['guard']
  /**
   * With REDIS_WAIT_REPLICAS: how the writes that must survive a failover are sent (on their own
   * connection where the client can make one: redis-lane.ts), and `settle`, which waits until
   * replicas have the write of `key` just answered (redis-wait.ts). See `durably`.
   */
  durable?: {
    run: ReturnType<typeof scriptRunner>
    settle: (key: string) => Promise<number>
  }
  /** With ACCESS_CHECK=tracked, where the client allows: checkAccess's read copy (redis-access-cache.ts). */
  accessCache?: AccessCache
}

const always = (): boolean => true

/**
 * `script` as a write that must survive a failover: a login's session, a rotation, and every
 * revocation and operator's change (a revoked token that a failover made valid again would be worse
 * than a login lost). With REDIS_WAIT_REPLICAS it goes by `ctx.durable` and is answered once replicas
 * have it, when `wrote` says its reply wrote (a WAIT with no replica takes its whole timeout, written
 * or not). Without it, the script as it is, no async step added: this is every refresh's path.
 */
export function durably (ctx: Context, key: string, script: (run: Context['run']) => Promise<unknown>, wrote: (reply: unknown) => boolean = always): Promise<unknown> {
  const lane = ctx.durable
  if (lane === undefined) return script(ctx.run)
  return script(lane.run).then(async (reply) => {
    if (wrote(reply)) await lane.settle(key)
    return reply
  })
}
