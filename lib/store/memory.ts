// The zero-setup store: one process, real TTLs. Same contract as the Redis store
// (test/lib/store/contract.ts runs against both); for development and single-instance use.
import type { SessionRef } from '../ids.js'
import { type CodeClaim, type Credential, type RotateInput, type RotateResult, type SessionData, type SessionStore, type TokenSubject } from './types.js'

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

export function createMemoryStore (opts: MemoryStoreOptions = {}): SessionStore {
  const now = opts.now ?? Date.now
  const users = new Map<string, Map<string, SessionEntry>>() // tag -> sid -> session
  const codes = new Map<string, Expiring<'pending' | 'used'>>()
  const hits = new Map<string, Expiring<number>>()
  const credentials = new Map<string, Credential>()
  const locks = new Map<string, Expiring<string>>()
  const live = <T>(map: Map<string, Expiring<T>>, key: string): T | undefined => {
    const e = map.get(key)
    return e !== undefined && e.expiresAt > now() ? e.value : undefined
  }

  function liveSession (ref: SessionRef): SessionEntry | undefined {
    const entry = users.get(ref.tag)?.get(ref.sid)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now()) {
      dropSession(ref)
      return undefined
    }
    return entry
  }

  function dropSession (ref: SessionRef): void {
    const sessions = users.get(ref.tag)
    sessions?.delete(ref.sid)
    if (sessions?.size === 0) users.delete(ref.tag)
  }

  function sweep (): void {
    const t = now()
    for (const [tag, sessions] of users) {
      for (const [sid, e] of sessions) if (e.expiresAt <= t) dropSession({ tag, sid })
    }
    for (const [k, c] of codes) if (c.expiresAt <= t) codes.delete(k)
    for (const [k, h] of hits) if (h.expiresAt <= t) hits.delete(k)
    for (const [k, l] of locks) if (l.expiresAt <= t) locks.delete(k)
    for (const [k, c] of credentials) if (c.expiresAt <= t) credentials.delete(k)
    opts.onSweep?.()
  }
  const timer = setInterval(sweep, opts.sweepMs ?? 30_000)
  timer.unref()

  return {
    kind: 'memory',
    async ping () {},

    async claimCode (codeId, pendingTtlMs): Promise<CodeClaim> {
      const c = codes.get(codeId)
      if (c !== undefined && c.expiresAt > now()) return c.value
      codes.set(codeId, { value: 'pending', expiresAt: now() + pendingTtlMs })
      return 'claimed'
    },

    async settleCode (codeId, accepted, usedTtlMs) {
      if (accepted) codes.set(codeId, { value: 'used', expiresAt: now() + usedTtlMs })
      else codes.delete(codeId)
    },

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
      const e = liveSession(ref)
      return e === undefined ? null : structuredClone(e.data)
    },

    async rotateRefresh (ref, input: RotateInput): Promise<RotateResult> {
      const e = liveSession(ref)
      if (e === undefined) return { status: 'invalid' }
      const t = now()
      if (input.generation === e.generation && input.presentedHash === e.current) {
        const ttlMs = Math.min(input.ttlSec * 1000, e.data.createdAt + input.maxAgeSec * 1000 - t)
        if (ttlMs <= 0) {
          dropSession(ref)
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
    },

    async checkAccess (ref, jti) {
      const e = liveSession(ref)
      if (e === undefined) return 'revoked'
      const until = e.blacklist.get(jti)
      if (until === undefined) return 'ok'
      if (until > now()) return 'revoked'
      e.blacklist.delete(jti) // past its TTL: forgotten, as the Redis store forgets it
      return 'ok'
    },

    async revokeSession (ref) {
      dropSession(ref)
    },

    async revokeUser (tag) {
      const sessions = [...(users.get(tag)?.keys() ?? [])]
      let live = 0
      for (const sid of sessions) {
        if (liveSession({ tag, sid }) !== undefined) live++
      }
      users.delete(tag)
      return live
    },

    async blacklist (ref, jti, ttlSec) {
      liveSession(ref)?.blacklist.set(jti, now() + Math.max(1, ttlSec) * 1000)
    },

    async hit (key, windowMs) {
      const t = now()
      const h = hits.get(key)
      if (h === undefined || h.expiresAt <= t) {
        hits.set(key, { value: 1, expiresAt: t + windowMs })
        return { current: 1, ttlMs: windowMs }
      }
      h.value++
      return { current: h.value, ttlMs: h.expiresAt - t }
    },

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
    },

    async close () {
      clearInterval(timer)
      credentials.clear()
      locks.clear()
      users.clear()
      codes.clear()
      hits.clear()
    }
  }
}

function subjectOf (data: SessionData): TokenSubject {
  const out: TokenSubject = { sub: data.sub, openid: data.openid }
  if (data.unionid !== undefined) out.unionid = data.unionid
  if (data.claims !== undefined) out.claims = structuredClone(data.claims)
  return out
}
