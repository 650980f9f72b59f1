// Where the tokens live: the platform's storage, so they survive a restart of the mini program, with
// a copy in memory that the client compares by identity to tell whether a session changed meanwhile.
import type { Events, Platform, Session, TokenPair } from './types.js'

// A refresh token the gateway's schema refuses (empty, over 512 characters) could never refresh.
const isSession = (v: unknown): v is Session => {
  const s = v as Session | null
  return !!s && typeof s.accessToken === 'string' && typeof s.refreshToken === 'string' &&
    s.refreshToken.length > 0 && s.refreshToken.length <= 512 &&
    [s.expiresAt, s.receivedAt, s.refreshExpiresAt].every((n) => typeof n === 'number')
}

export function createSessionStore (platform: Platform, key: string) {
  let current: Session | null = null
  try {
    const stored = platform.getStorageSync(key)
    if (isSession(stored)) current = stored
  } catch {
    // Unreadable storage is no session: the next request logs in.
  }

  /** Keeps a login's or a refresh's pair; a full storage only costs the next cold start a login. */
  function save (pair: TokenPair, now: number): Session {
    const s: Session = {
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      openid: pair.openid,
      expiresAt: now + pair.expiresIn * 1000,
      receivedAt: now,
      refreshExpiresAt: now + pair.refreshExpiresIn * 1000
    }
    if (pair.unionid !== undefined) s.unionid = pair.unionid
    current = s
    // Not left with the pair before: spent at the gateway once this one is kept, it would be taken
    // for a stolen refresh token at the next cold start, which ends the session.
    try { platform.setStorageSync(key, s) } catch { drop() }
    return s
  }

  const drop = (): void => { try { platform.removeStorageSync(key) } catch {} }
  function clear (): void {
    current = null
    drop()
  }

  // The session a logout is ending: a refresh of it that answers meanwhile must not bring it back.
  let closing: Session | null = null

  return { get: (): Session | null => current, save, clear, closing: (s?: Session | null): Session | null => s === undefined ? closing : (closing = s) }
}

type Listener<K extends keyof Events> = (value: Events[K]) => void

export function createEmitter () {
  const listeners: { [K in keyof Events]?: Array<Listener<K>> } = {}

  /** Listens to an event; returns the function that stops listening. */
  function on<K extends keyof Events> (name: K, fn: Listener<K>): () => void {
    let list = listeners[name]
    if (list === undefined) {
      list = []
      listeners[name] = list
    }
    list.push(fn)
    return () => {
      const i = list.indexOf(fn)
      if (i >= 0) list.splice(i, 1)
    }
  }

  function emit<K extends keyof Events> (name: K, value: Events[K]): void {
    for (const fn of (listeners[name] || []).slice()) {
      // A listener that throws must not break the request that emitted.
      try { fn(value) } catch {}
    }
  }

  return { on, emit }
}
