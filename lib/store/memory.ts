// The zero-setup store: one process, real TTLs. Same contract as the Redis store
// (test/lib/store/contract.ts runs against both); for development and single-instance use.
import { memoryControl } from './memory-control.js'
import { memoryHandoff } from './memory-handoff.js'
import { dropSession, memorySessions, type Expiring, type State } from './memory-sessions.js'
import type { CodeClaim, CounterStore, CredentialStore, LoginCodeStore, SessionStore } from './types.js'

export interface MemoryStoreOptions {
  /** Clock in ms, for tests; defaults to Date.now. */
  now?: () => number
  /** How often expired entries are swept, in ms. */
  sweepMs?: number
  /** Called after each background sweep (tests: the sweep is otherwise invisible behind expiry checks). */
  onSweep?: () => void
}

/** Everything the memory store holds, with its clock. */
export function createMemoryStore (opts: MemoryStoreOptions = {}): SessionStore {
  const state: State = { now: opts.now ?? Date.now, users: new Map(), ended: new Map(), codes: new Map(), hits: new Map(), credentials: new Map(), locks: new Map(), bans: new Map(), access: new Map(), serviceBans: new Map(), openids: new Map() }
  const { now, users, ended, codes, hits, credentials, locks } = state
  const { sweep: sweepHandoff, clear: clearHandoff, ...handoff } = memoryHandoff(now)
  function sweep (): void {
    const t = now()
    for (const [tag, sessions] of users) {
      for (const [sid, e] of sessions) if (e.expiresAt <= t) dropSession(state, { tag, sid })
    }
    for (const [tag, markers] of ended) {
      for (const [sid, m] of markers) if (m.expiresAt <= t) markers.delete(sid)
      if (markers.size === 0) ended.delete(tag)
    }
    for (const map of [codes, hits, locks, credentials, state.openids]) {
      for (const [k, e] of map) if (e.expiresAt <= t) map.delete(k)
    }
    sweepHandoff()
    opts.onSweep?.()
  }
  const timer = setInterval(sweep, opts.sweepMs ?? 30_000)
  timer.unref()

  return {
    kind: 'memory',
    async ping () {},
    ...memorySessions(state),
    ...memoryControl(state),
    ...memoryLoginCodes(state),
    ...memoryCounters(state),
    ...memoryCredentials(state),
    ...handoff,
    async close () {
      clearInterval(timer)
      clearHandoff()
      for (const map of [credentials, locks, users, ended, codes, hits, state.bans, state.access, state.serviceBans, state.openids]) map.clear()
    }
  }
}

function memoryLoginCodes ({ codes, now }: State): LoginCodeStore {
  return {
    async claimCode (codeId, pendingTtlMs): Promise<CodeClaim> {
      const c = codes.get(codeId)
      if (c !== undefined && c.expiresAt > now()) return c.value
      codes.set(codeId, { value: 'pending', expiresAt: now() + pendingTtlMs })
      return 'claimed'
    },

    async settleCode (codeId, accepted, usedTtlMs) {
      if (accepted) codes.set(codeId, { value: 'used', expiresAt: now() + usedTtlMs })
      else codes.delete(codeId)
    }
  }
}

function memoryCounters ({ hits, now }: State): CounterStore {
  return {
    async hit (key, windowMs) {
      const t = now()
      const h = hits.get(key)
      if (h === undefined || h.expiresAt <= t) {
        hits.set(key, { value: 1, expiresAt: t + windowMs })
        return { current: 1, ttlMs: windowMs }
      }
      h.value++
      return { current: h.value, ttlMs: h.expiresAt - t }
    }
  }
}

function memoryCredentials ({ credentials, locks, now }: State): CredentialStore {
  const live = <T>(map: Map<string, Expiring<T>>, key: string): T | undefined => {
    const e = map.get(key)
    return e !== undefined && e.expiresAt > now() ? e.value : undefined
  }
  return {
    async getCredential (name) {
      const c = credentials.get(name)
      return c === undefined || c.expiresAt <= now() ? null : { ...c }
    },

    async lockCredential (name, owner, ttlMs) {
      if (live(locks, name) !== undefined) return false
      locks.set(name, { value: owner, expiresAt: now() + ttlMs })
      return true
    },

    async saveCredential (name, credential, owner) {
      credentials.set(name, { ...credential })
      if (live(locks, name) === owner) locks.delete(name)
    },

    async unlockCredential (name, owner) {
      if (live(locks, name) === owner) locks.delete(name)
    }
  }
}
