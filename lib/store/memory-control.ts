// The memory store's kick and ban, as the Redis store's scripts do them.
import { endSessions, liveSessionsOf, type State } from './memory-sessions.js'
import type { SessionsStore } from './types.js'

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

/** Ends the chosen live sessions of `tag` (or all) for `reason`, leaving markers as a replacing login does. */
function kickIn (state: State, tag: string, sids: string[] | 'all', reason: string, accessTtlMs: number): number {
  const ending = liveSessionsOf(state, tag).filter(({ sid }) => sids === 'all' || sids.includes(sid))
  endSessions(state, tag, ending, { reason: 'kicked', by: reason }, accessTtlMs)
  return ending.length
}
