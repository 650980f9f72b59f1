// The memory store's kick and ban, as the Redis store's scripts do them.
import { MAX_ENDED } from './redis-layout.js'
import { dropSession, liveSession, type Expiring, type State } from './memory-sessions.js'
import type { SessionEnd, SessionsStore } from './types.js'

export function memoryControl (state: State): Pick<SessionsStore, 'kick' | 'ban' | 'unban'> {
  return {
    async kick (tag, sids, reason, accessTtlMs) { return kickIn(state, tag, sids, reason, accessTtlMs) },

    async ban (tag, ban, accessTtlMs) {
      kickIn(state, tag, 'all', ban.reason, accessTtlMs)
      state.bans.set(tag, { ...ban })
    },

    async unban (tag) { state.bans.delete(tag) }
  }
}

/** Ends the chosen live sessions of `tag` for `reason`, leaving markers as a replacing login does. */
function kickIn (state: State, tag: string, sids: string[] | 'all', reason: string, accessTtlMs: number): number {
  const t = state.now()
  const markers = state.ended.get(tag) ?? new Map<string, Expiring<SessionEnd>>()
  let n = 0
  for (const sid of [...(state.users.get(tag)?.keys() ?? [])]) {
    const e = liveSession(state, { tag, sid })
    if (e === undefined || (sids !== 'all' && !sids.includes(sid))) continue
    dropSession(state, { tag, sid })
    markers.set(sid, { value: { reason: 'kicked', endedAt: t, by: reason }, expiresAt: Math.max(e.expiresAt, t + accessTtlMs) })
    n++
  }
  const oldest = [...markers].sort((a, b) => a[1].value.endedAt - b[1].value.endedAt)
  for (const [sid] of oldest.slice(0, Math.max(0, markers.size - MAX_ENDED))) markers.delete(sid)
  if (markers.size > 0) state.ended.set(tag, markers)
  return n
}
