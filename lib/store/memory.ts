// The zero-setup store: one process, real TTLs. Same contract as the Redis store
// (test/lib/store/contract.ts runs against both); for development and single-instance use.
import type { SessionRef } from '../ids.js'
import type {
  CodeClaim, CounterStore, Credential, CredentialStore, LoginCodeStore, RotateInput, RotateResult, SessionData, SessionStore, SessionsStore, TokenSubject
} from './types.js'

interface SessionEntry {
  data: SessionData
  /** Digest of the current refresh token, and its generation. */
  current: string
  generation: number
  /** When the current token was issued by a rotation (the grace window of its predecessor), with what nonce. */
  rotatedAt: number
  nonce: string
  expiresAt: number
  /** Blacklisted token ids of this session, with when they may be forgotten. */
  blacklist: Map<string, number>
}

interface Expiring<T> { value: T, expiresAt: number }

export interface MemoryStoreOptions {
  /** Clock in ms, for tests; defaults to Date.now. */
  now?: () => number
  /** How often expired entries are swept, in ms. */
  sweepMs?: number
  /** Called after each background sweep (tests: the sweep is otherwise invisible behind expiry checks). */
  onSweep?: () => void
}

/** Everything the memory store holds, with its clock. */
interface State {
  now: () => number
  users: Map<string, Map<string, SessionEntry>> // tag -> sid -> session
  codes: Map<string, Expiring<'pending' | 'used'>>
  hits: Map<string, Expiring<number>>
  credentials: Map<string, Credential>
  locks: Map<string, Expiring<string>>
}

export function createMemoryStore (opts: MemoryStoreOptions = {}): SessionStore {
  const state: State = { now: opts.now ?? Date.now, users: new Map(), codes: new Map(), hits: new Map(), credentials: new Map(), locks: new Map() }
  const { now, users, codes, hits, credentials, locks } = state
  function sweep (): void {
    const t = now()
    for (const [tag, sessions] of users) {
      for (const [sid, e] of sessions) if (e.expiresAt <= t) dropSession(state, { tag, sid })
    }
    for (const map of [codes, hits, locks, credentials]) {
      for (const [k, e] of map) if (e.expiresAt <= t) map.delete(k)
    }
    opts.onSweep?.()
  }
  const timer = setInterval(sweep, opts.sweepMs ?? 30_000)
  timer.unref()

  return {
    kind: 'memory',
    async ping () {},
    ...memorySessions(state),
    ...memoryLoginCodes(state),
    ...memoryCounters(state),
    ...memoryCredentials(state),
    async close () {
      clearInterval(timer)
      for (const map of [credentials, locks, users, codes, hits]) map.clear()
    }
  }
}

function liveSession ({ users, now }: State, ref: SessionRef): SessionEntry | undefined {
  const entry = users.get(ref.tag)?.get(ref.sid)
  if (entry === undefined) return undefined
  if (entry.expiresAt <= now()) {
    dropSession({ users }, ref)
    return undefined
  }
  return entry
}

function dropSession ({ users }: Pick<State, 'users'>, ref: SessionRef): void {
  const sessions = users.get(ref.tag)
  sessions?.delete(ref.sid)
  if (sessions?.size === 0) users.delete(ref.tag)
}

function memorySessions (state: State): SessionsStore {
  const { users, now } = state
  return {
    async createSession (ref, data, refreshHash, ttlSec) {
      let sessions = users.get(ref.tag)
      if (sessions === undefined) users.set(ref.tag, (sessions = new Map()))
      sessions.set(ref.sid, {
        data: { ...structuredClone(data), createdAt: now() },
        current: refreshHash,
        generation: 0,
        rotatedAt: 0,
        nonce: '',
        expiresAt: now() + ttlSec * 1000,
        blacklist: new Map()
      })
    },

    async getSession (ref) {
      const e = liveSession(state, ref)
      return e === undefined ? null : structuredClone(e.data)
    },

    async rotateRefresh (ref, input) { return rotate(state, ref, input) },

    async checkAccess (ref, jti) {
      const e = liveSession(state, ref)
      if (e === undefined) return 'revoked'
      const until = e.blacklist.get(jti)
      if (until === undefined) return 'ok'
      if (until > now()) return 'revoked'
      e.blacklist.delete(jti) // past its TTL: forgotten, as the Redis store forgets it
      return 'ok'
    },

    async revokeSession (ref) {
      dropSession(state, ref)
    },

    async revokeUser (tag) {
      const sessions = [...(users.get(tag)?.keys() ?? [])]
      let live = 0
      for (const sid of sessions) {
        if (liveSession(state, { tag, sid }) !== undefined) live++
      }
      users.delete(tag)
      return live
    },

    async blacklist (ref, jti, ttlSec) {
      liveSession(state, ref)?.blacklist.set(jti, now() + Math.max(1, ttlSec) * 1000)
    }
  }
}

function rotate (state: State, ref: SessionRef, input: RotateInput): RotateResult {
  const e = liveSession(state, ref)
  if (e === undefined) return { status: 'invalid' }
  const t = state.now()
  if (input.generation === e.generation && input.presentedHash === e.current) {
    const ttlMs = Math.min(input.ttlSec * 1000, e.data.createdAt + input.maxAgeSec * 1000 - t)
    if (ttlMs <= 0) {
      dropSession(state, ref)
      return { status: 'invalid' }
    }
    e.current = input.nextHash
    e.generation++
    e.rotatedAt = t
    e.nonce = input.nonce
    e.expiresAt = t + ttlMs
    return { status: 'rotated', session: subjectOf(e.data), ttlMs }
  }
  if (input.generation === e.generation - 1 && e.generation > 0) {
    return {
      status: 'predecessor',
      session: subjectOf(e.data),
      ttlMs: e.expiresAt - t,
      nonce: e.nonce,
      currentHash: e.current,
      inGrace: t - e.rotatedAt <= input.graceMs
    }
  }
  return { status: input.generation < e.generation - 1 ? 'behind' : 'invalid' }
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

function subjectOf (data: SessionData): TokenSubject {
  const out: TokenSubject = { sub: data.sub, openid: data.openid }
  if (data.unionid !== undefined) out.unionid = data.unionid
  if (data.claims !== undefined) out.claims = structuredClone(data.claims)
  return out
}
