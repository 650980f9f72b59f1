// The production store: sessions, refresh-token state, access-token blacklist, login-code markers
// and rate-limit counters in Redis. Every key has a TTL (but a user kept for good by roles or a ban
// without end, and the index of those: redis-kept.ts). All of one
// user lives in one key, so every script touches one Redis Cluster slot. The layout is in
// redis-layout.ts, the scripts in redis-scripts.ts (sent by redis-script-runner.ts), the sessions in
// redis-sessions.ts, the deadlines in deadlines.ts.
import { StoreUnavailableError } from '../errors.js'
import { createDeadlines } from './deadlines.js'
import { disconnectClient, sendCommandOf, toMastersOf, type RedisClient, type SendCommand } from './redis-client.js'
import { openLane, type Lane } from './redis-lane.js'
import { letGo, releaseLock, takeLock } from './redis-locks.js'
import { randomId } from '../ids.js'
import { CODE_PENDING, CODE_USED, keyNames, packCredential, unpackCredential } from './redis-layout.js'
import { scriptRunner, toldOnce } from './redis-script-runner.js'
import { redisControl } from './redis-control.js'
import { KEPT_SWEEP_EVERY_MS, keptUsers, type SweepFailed } from './redis-kept.js'
import { redisHandoff } from './redis-handoff.js'
import { redisSessions } from './redis-sessions.js'
import type { Context } from './redis-context.js'
import { replicaWaiter, type WaitOptions } from './redis-wait.js'
import type { AccessCache } from './redis-access-cache.js'
import type { CodeClaim, CounterStore, CredentialStore, LoginCodeStore, SessionStore } from './types.js'

export interface RedisStoreOptions {
  client: RedisClient
  keyPrefix: string
  /** Upper bound on one operation; past it the operation fails with STORE_UNAVAILABLE. */
  timeoutMs: number
  /** Whether close() should disconnect the client (true only when the store created it). */
  ownsClient: boolean
  /**
   * Durability (REDIS_WAIT_REPLICAS, REDIS_WAIT_TIMEOUT_MS): opening a session, rotating a refresh
   * token, a revocation and an operator's change are answered once this many replicas have the write, or the timeout passed (then the write
   * stands and `onShort` is told). Refused for a client that cannot (redis-wait.ts).
   */
  wait?: WaitOptions
  /** ACCESS_CHECK=tracked: checkAccess's read copy (redis-access-cache.ts), closed with the store. */
  accessCache?: AccessCache
  /** How often to try the sweep of keys kept for good (redis-kept.ts); KEPT_SWEEP_EVERY_MS but in tests. */
  sweepEveryMs?: number
  /** Told when sweeps fail (sweepWarning: a log line at most every ten minutes). */
  onSweepFailed?: SweepFailed
  /** Told when Redis refuses functions, and why (once until they come back): scripts go by EVALSHA, functions tried again every FUNCTIONS_RETRY_MS (redis-script-runner.ts's scriptsNotices). */
  onScriptsFallback?: (why: string) => void
  /** Told when functions tried again answer, after onScriptsFallback. */
  onScriptsRestored?: () => void
}

/** `run`, dropping the read copy's entries of the keys a script writes, when sent and when settled. */
function writingThrough (run: Context['run'], cache: AccessCache | undefined): Context['run'] {
  if (cache === undefined) return run
  return async (name, keys, ...args) => {
    cache.wrote(keys)
    try {
      return await run(name, keys, ...args)
    } finally {
      cache.wrote(keys)
    }
  }
}

/** The Redis store; `sweepKept` runs the sweep of keys kept for good (redis-kept.ts) now, as its timer does every minute. */
export function createRedisStore (opts: RedisStoreOptions): SessionStore & { sweepKept: () => Promise<number> } {
  const { client } = opts
  const send = sendCommandOf(client)
  const deadlines = createDeadlines(opts.timeoutMs)
  const { accessCache } = opts
  const notices = toldOnce(opts) // for the store's runners: its connection's, the durable lane's
  const runner = (on: { client: RedisClient, send: SendCommand }): Context['run'] => writingThrough(scriptRunner(on.send, { load: toMastersOf(on.client, on.send), ...notices }), accessCache)
  const ctx: Context = { keys: keyNames(opts.keyPrefix), send, run: runner({ client, send }), guard: deadlines.guard, accessCache }
  const lane = opts.wait !== undefined && opts.wait.replicas > 0 ? durableWrites(ctx, client, opts.timeoutMs, opts.wait, runner) : null
  const guard = deadlines.guard
  /** Every connection the store writes on: the lane's, when it has one, goes wrong on its own. */
  const probed: SendCommand[] = lane === null ? [send] : [send, lane.send]
  const kept = keptUsers(ctx, opts.timeoutMs, opts.onSweepFailed)
  // A sweep that fails (Redis down, or slow) is tried again at the next tick; nothing waits on it.
  const sweeper = setInterval(kept.tick, opts.sweepEveryMs ?? KEPT_SWEEP_EVERY_MS)
  sweeper.unref()

  return {
    kind: 'redis',
    ...redisSessions(ctx, (tag) => { kept.enter(tag, true) }),
    ...redisControl(ctx, kept),
    sweepKept: kept.sweep,
    ...redisLoginCodes(ctx),
    ...redisCounters(ctx),
    ...redisCredentials(ctx),
    ...redisHandoff(ctx),

    /**
     * Whether the store can write for any user: a short-lived write to a key in each sixteenth of the
     * slots, all within one deadline. Fails on a Redis that is down or hangs, a read-only replica, a
     * cluster slot with no master, and a client stuck on an old slot map; a PING cannot tell these.
     */
    async ping () {
      const answers = await guard(async () => {
        await lane?.ready
        return await Promise.all(probed.flatMap((on) => ctx.keys.health.map(async (key) => await on(key, ['SET', key, '1', 'PX', '10000']))))
      })
      // A client that answers anything else (a callback-style wrapper answers undefined) is not usable.
      const odd = answers.find((answer) => answer !== 'OK')
      if (odd !== undefined || answers.length === 0) throw new StoreUnavailableError({ cause: new Error(`SET answered ${String(odd)}`) })
    },

    async close () {
      clearInterval(sweeper)
      await kept.stop()
      // Operations in flight get until their deadline, then the connection is dropped: a Redis
      // that hangs cannot hold the process open.
      if (opts.ownsClient || lane !== null) await deadlines.drain()
      lane?.close()
      accessCache?.close()
      if (opts.ownsClient) disconnectClient(client)
      deadlines.stop()
    }
  }
}

/**
 * Durability on: the durable writes (redis-context.ts's `durably`) and their WAITs go on a
 * connection of their own when the client can make one (redis-lane.ts), which is returned.
 */
function durableWrites (ctx: Context, client: RedisClient, timeoutMs: number, wait: WaitOptions, runner: (on: { client: RedisClient, send: SendCommand }) => Context['run']): Lane | null {
  const lane = openLane(client, timeoutMs)
  const on = lane ?? { client, send: ctx.send, ready: Promise.resolve() }
  try {
    const run = runner(on)
    const { track, settle } = replicaWaiter(on.client, on.send, wait)
    ctx.durable = {
      run: async (...args) => { await on.ready; return await track(run(...args)) },
      settle
    }
    return lane
  } catch (err) {
    lane?.close()
    throw err
  }
}

function redisLoginCodes (ctx: Context): LoginCodeStore {
  const { keys, send, guard } = ctx
  return {
    async claimCode (codeId, pendingTtlMs) {
      const key = keys.code(codeId)
      // Each claim is its own value, so that one answered too late (a frozen Redis) is released by
      // this claim alone: a client that got 503 STORE_UNAVAILABLE may use its code again.
      const claim = `${CODE_PENDING}${randomId(9)}`
      const release = (outcome: CodeClaim): void => {
        if (outcome === 'claimed') letGo(ctx, key, claim)
      }
      return await guard(async (): Promise<CodeClaim> => {
        for (let attempt = 0; attempt < 2; attempt++) {
          if (await send(key, ['SET', key, claim, 'PX', String(pendingTtlMs), 'NX']) === 'OK') return 'claimed'
          const v = await send(key, ['GET', key])
          if (v !== null) return v === CODE_USED ? 'used' : 'pending'
        }
        return 'pending' // claimed and released in between, twice: treat as in use
      }, release)
    },

    async settleCode (codeId, accepted, usedTtlMs) {
      await guard(async () => {
        const key = keys.code(codeId)
        await send(key, accepted ? ['SET', key, CODE_USED, 'PX', String(usedTtlMs)] : ['DEL', key])
      })
    }
  }
}

function redisCounters ({ keys, run, guard }: Context): CounterStore {
  return {
    async hit (key, windowMs) {
      const [current, ttl] = await guard(async () => await run('wxauthHit', [keys.rateLimit + key], windowMs)) as [number, number]
      return { current: Number(current), ttlMs: Number(ttl) }
    }
  }
}

function redisCredentials (ctx: Context): CredentialStore {
  const { keys, send, run, guard } = ctx
  return {
    async getCredential (name) {
      const key = keys.credential(name)
      const packed = await guard(async () => await send(key, ['GET', key]))
      if (typeof packed !== 'string') return null
      const credential = unpackCredential(packed)
      return credential.expiresAt > Date.now() ? credential : null
    },

    async lockCredential (name, owner, ttlMs) {
      return await takeLock(ctx, keys.credentialLock(name), owner, ttlMs)
    },

    async saveCredential (name, credential, owner) {
      const ttlMs = credential.expiresAt - Date.now()
      if (ttlMs <= 0) return
      await guard(async () => await run('wxauthSaveCredential', [keys.credential(name), keys.credentialLock(name)],
        packCredential(credential), ttlMs, owner))
    },

    async unlockCredential (name, owner) {
      await releaseLock(ctx, keys.credentialLock(name), owner)
    }
  }
}
