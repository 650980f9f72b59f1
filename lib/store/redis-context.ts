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
   * With REDIS_WAIT_REPLICAS: how the writes that open a session and rotate a refresh token are sent
   * (on their own connection where the client can make one: redis-lane.ts), and `settle`, which waits
   * until replicas have the write of `key` just answered (redis-wait.ts).
   */
  durable?: {
    run: ReturnType<typeof scriptRunner>
    settle: (key: string) => Promise<number>
  }
  /** With ACCESS_CHECK=tracked, where the client allows: checkAccess's read copy (redis-access-cache.ts). */
  accessCache?: AccessCache
}
