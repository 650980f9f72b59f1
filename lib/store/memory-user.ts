// What the memory store keeps of a user rather than of a session: the ban, roles and permissions,
// service bans; and a live session's access state built from them as the Redis store reads it.
import { liveAccess } from './access-state.js'
import type { SessionEntry, State } from './memory-sessions.js'
import { packAccess, SEP } from './redis-layout.js'
import type { Access, SessionEnd } from './types.js'

/** The user's ban while it lasts, as what its tokens are told (an expired one is dropped). */
export function banOf ({ bans, now }: State, tag: string): SessionEnd | undefined {
  const ban = bans.get(tag)
  if (ban === undefined) return undefined
  if (ban.until !== null && ban.until <= now()) {
    bans.delete(tag)
    return undefined
  }
  return { reason: 'banned', endedAt: ban.until ?? 0, by: ban.reason }
}

/**
 * Replaces (or with none of either, forgets) a user's roles and permissions. Those resolveUser gave at
 * a login live as long as the user's sessions, as the Redis store's key does; an operator's for good.
 */
export function setAccessIn ({ access }: State, tag: string, value: Access, fromLogin = false): void {
  packAccess(value) // the same names refused as by the Redis store
  if (value.roles.length + value.permissions.length === 0) access.delete(tag)
  else access.set(tag, { roles: [...value.roles], permissions: [...value.permissions], fromLogin })
}

/** A user's roles and permissions while they last (those of a login go with the user's last session). */
export function accessOf (state: State, tag: string): Access | undefined {
  const access = state.access.get(tag)
  const live = (): boolean => [...state.users.get(tag)?.values() ?? []].some((e) => e.expiresAt > state.now())
  if (access?.fromLogin === true && !live()) {
    state.access.delete(tag)
    return undefined
  }
  return access
}

/** A live session's access state, from the same packed values the Redis store reads. */
export function accessIn (state: State, tag: string, e: SessionEntry): ReturnType<typeof liveAccess> {
  const access = accessOf(state, tag)
  const bans = state.serviceBans.get(tag)
  return liveAccess(access === undefined ? null : packAccess(access),
    bans === undefined ? null : bans.map((b) => [b.service, b.until ?? 0, b.reason].join(SEP)).join(SEP),
    e.steppedUpAt === 0 ? null : String(e.steppedUpAt), state.now())
}
