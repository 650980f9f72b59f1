// The memory store's session and access control (kick, ban, service bans, roles, step-up), as the
// Redis store's scripts do them.
import { ServiceBansFullError } from '../errors.js'
import { lastingBans } from './access-state.js'
import { MAX_SERVICE_BANS } from './redis-layout.js'
import { endOf, endSessions, liveSession, liveSessionsOf, type State } from './memory-sessions.js'
import { accessOf, banOf, setAccessIn } from './memory-user.js'
import type { AccessStore, SessionsStore } from './types.js'

export function memoryControl (state: State): Pick<SessionsStore, 'kick' | 'ban' | 'unban'> & AccessStore {
  const { now } = state
  /** The user's service bans that still last, but the one of `service`. */
  const otherBans = (tag: string, service: string) => lastingBans(state.serviceBans.get(tag) ?? [], now()).filter((b) => b.service !== service)
  const openidKey = (appid: string, openid: string): string => `${appid}\u0000${openid}`
  return {
    async kick (tag, sids, reason, accessTtlMs) { return kickIn(state, tag, sids, reason, accessTtlMs) },

    async ban (tag, ban, accessTtlMs) {
      kickIn(state, tag, 'all', ban.reason, accessTtlMs)
      state.bans.set(tag, { ...ban })
    },

    async unban (tag) { state.bans.delete(tag) },

    async setAccess (tag, access) { setAccessIn(state, tag, access) },

    async userState (tag) {
      const ban = banOf(state, tag)
      const access = accessOf(state, tag)
      return {
        roles: [...access?.roles ?? []],
        permissions: [...access?.permissions ?? []],
        ban: ban === undefined ? null : { until: ban.endedAt === 0 ? null : ban.endedAt, reason: ban.by },
        serviceBans: lastingBans(state.serviceBans.get(tag) ?? [], now()).map((b) => ({ ...b }))
      }
    },

    async banService (tag, ban) {
      const kept = otherBans(tag, ban.service)
      if (kept.length >= MAX_SERVICE_BANS) throw new ServiceBansFullError(String(MAX_SERVICE_BANS))
      state.serviceBans.set(tag, [...kept, { ...ban }])
    },

    async unbanService (tag, service) {
      const kept = otherBans(tag, service)
      if (kept.length > 0) state.serviceBans.set(tag, kept)
      else state.serviceBans.delete(tag)
    },

    async stepUp (ref, sessionKey) {
      const banned = banOf(state, ref.tag)
      if (banned !== undefined) return banned
      const e = liveSession(state, ref)
      if (e === undefined) return endOf(state, ref) ?? 'revoked'
      e.data.sessionKey = sessionKey
      e.steppedUpAt = now()
      return { status: 'ok', at: e.steppedUpAt }
    },

    async rememberOpenid (appid, openid, sub, ttlSec) {
      state.openids.set(openidKey(appid, openid), { value: sub, expiresAt: now() + ttlSec * 1000 })
    },

    async subOfOpenid (appid, openid) {
      const entry = state.openids.get(openidKey(appid, openid))
      return entry !== undefined && entry.expiresAt > now() ? entry.value : null
    }
  }
}

/** Ends the chosen live sessions of `tag` (or all) for `reason`, leaving markers as a replacing login does. */
function kickIn (state: State, tag: string, sids: string[] | 'all', reason: string, accessTtlMs: number): number {
  const ending = liveSessionsOf(state, tag).filter(({ sid }) => sids === 'all' || sids.includes(sid))
  endSessions(state, tag, ending, { reason: 'kicked', by: reason }, accessTtlMs)
  return ending.length
}
