// The zero-setup store: one process, real TTLs. Same contract as the Redis store
// (test/lib/store-contract.ts runs against both); for development and single-instance use.
import type { SessionRef } from '../tokens.js'
import { REFRESH_HISTORY, type CodeClaim, type RotateInput, type RotateResult, type SessionData, type SessionStore } from './types.js'

interface SessionEntry {
  data: SessionData
  current: string
  previous?: string
  previousAt?: number
  sealedSuccessor?: string
  history: string[]
  expiresAt: number
}

interface Expiring<T> { value: T, expiresAt: number }

export interface MemoryStoreOptions {
  /** Clock in ms, for tests; defaults to Date.now. */
  now?: () => number
  /** How often expired entries are swept, in ms. */
  sweepMs?: number
}

export function createMemoryStore (opts: MemoryStoreOptions = {}): SessionStore {
  const now = opts.now ?? Date.now
  const sessions = new Map<string, SessionEntry>() // `${tag}/${sid}`
  const users = new Map<string, Set<string>>() // tag -> sids
  const blacklisted = new Map<string, number>() // `${tag}/${jti}` -> expiresAt
  const codes = new Map<string, Expiring<'pending' | 'used'>>()
  const hits = new Map<string, Expiring<number>>()

  const sessionId = (ref: SessionRef): string => `${ref.tag}/${ref.sid}`

  function liveSession (ref: SessionRef): SessionEntry | undefined {
    const entry = sessions.get(sessionId(ref))
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now()) {
      dropSession(ref)
      return undefined
    }
    return entry
  }

  function dropSession (ref: SessionRef): boolean {
    const existed = sessions.delete(sessionId(ref))
    const sids = users.get(ref.tag)
    if (sids !== undefined) {
      sids.delete(ref.sid)
      if (sids.size === 0) users.delete(ref.tag)
    }
    return existed
  }

  function addBlacklist (tag: string, jti: string | undefined, ttlSec: number | undefined): void {
    if (jti === undefined) return
    blacklisted.set(`${tag}/${jti}`, now() + Math.max(1, ttlSec ?? 1) * 1000)
  }

  function sweep (): void {
    const t = now()
    for (const [id, e] of sessions) {
      if (e.expiresAt <= t) {
        const [tag, sid] = id.split('/') as [string, string]
        dropSession({ tag, sid })
      }
    }
    for (const [k, exp] of blacklisted) if (exp <= t) blacklisted.delete(k)
    for (const [k, c] of codes) if (c.expiresAt <= t) codes.delete(k)
    for (const [k, h] of hits) if (h.expiresAt <= t) hits.delete(k)
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
      sessions.set(sessionId(ref), {
        data: { ...structuredClone(data), createdAt: now() },
        current: refreshHash,
        history: [],
        expiresAt: now() + ttlSec * 1000
      })
      let sids = users.get(ref.tag)
      if (sids === undefined) users.set(ref.tag, (sids = new Set()))
      sids.add(ref.sid)
    },

    async getSession (ref) {
      const e = liveSession(ref)
      return e === undefined ? null : structuredClone(e.data)
    },

    async rotateRefresh (ref, input: RotateInput): Promise<RotateResult> {
      const e = liveSession(ref)
      if (e === undefined) return { status: 'invalid' }
      const t = now()
      if (input.presentedHash === e.current) {
        const ttlMs = Math.min(input.ttlSec * 1000, e.data.createdAt + input.maxAgeSec * 1000 - t)
        if (ttlMs <= 0) {
          dropSession(ref)
          return { status: 'invalid' }
        }
        if (e.previous !== undefined) e.history = [e.previous, ...e.history].slice(0, REFRESH_HISTORY)
        e.previous = e.current
        e.previousAt = t
        e.sealedSuccessor = input.sealedSuccessor
        e.current = input.nextHash
        e.expiresAt = t + ttlMs
        return { status: 'rotated', session: structuredClone(e.data), ttlMs }
      }
      const isPrevious = input.presentedHash === e.previous
      if (isPrevious && e.sealedSuccessor !== undefined && t - (e.previousAt ?? 0) <= input.graceMs) {
        return { status: 'grace', session: structuredClone(e.data), ttlMs: e.expiresAt - t, sealedSuccessor: e.sealedSuccessor }
      }
      if (isPrevious || e.history.includes(input.presentedHash)) {
        dropSession(ref)
        return { status: 'reused' }
      }
      return { status: 'invalid' }
    },

    async checkAccess (ref, jti) {
      const exp = blacklisted.get(`${ref.tag}/${jti}`)
      if (exp !== undefined && exp > now()) return 'revoked'
      return liveSession(ref) === undefined ? 'revoked' : 'ok'
    },

    async revokeSession (ref, jti, jtiTtlSec) {
      dropSession(ref)
      addBlacklist(ref.tag, jti, jtiTtlSec)
    },

    async revokeUser (tag, jti, jtiTtlSec) {
      const sids = [...(users.get(tag) ?? [])]
      let live = 0
      for (const sid of sids) {
        if (liveSession({ tag, sid }) !== undefined) live++
        dropSession({ tag, sid })
      }
      addBlacklist(tag, jti, jtiTtlSec)
      return live
    },

    async blacklist (tag, jti, ttlSec) {
      addBlacklist(tag, jti, ttlSec)
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

    async close () {
      clearInterval(timer)
      hits.clear()
      sessions.clear()
      users.clear()
      blacklisted.clear()
      codes.clear()
    }
  }
}
