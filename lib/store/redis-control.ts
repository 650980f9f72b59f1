// The Redis store's session and access control: kick and ban, service bans, roles and permissions,
// step-up, and which user an openid logged in as. Scripts in redis-control-scripts.ts.
import { ServiceBansFullError } from '../errors.js'
import { endOf, lastingBans } from './access-state.js'
import { ACCESS_FIELD, BAN_FIELD, MAX_SERVICE_BANS, SERVICE_BANS_FIELD, packAccess, unpack, unpackAccess, unpackServiceBans } from './redis-layout.js'
import { durably, type Context } from './redis-context.js'
import type { ScriptName } from './redis-scripts.js'
import type { keptUsers } from './redis-kept.js'
import type { AccessStore, SessionsStore } from './types.js'

/**
 * `kept.changing`: an operator's change but a kick, with its user in the sweep's index of keys kept for
 * good (redis-kept.ts) around it: any of them may keep the key for good, or let sessions start in a
 * key still kept (an unban under roles). A user whose key is not kept leaves the index at the next
 * sweep. A change that still lands after its caller was told it failed enters the user again.
 */
export function redisControl (ctx: Context, kept: Pick<ReturnType<typeof keptUsers>, 'changing' | 'enter'>): Pick<SessionsStore, 'kick' | 'ban' | 'unban'> & AccessStore {
  const { keys, send, run, guard } = ctx
  /**
   * An operator's change of the user's key, durable (redis-context.ts): a kick or a ban a failover
   * took back would let the user in again. `wrote`: whether the script's reply says it wrote.
   */
  const write = async (tag: string, script: ScriptName, args: Array<string | number>, wrote?: (reply: unknown) => boolean): Promise<unknown> => {
    const key = keys.user(tag)
    return await durably(ctx, key, async (on) => await on(script, [key], ...args), wrote)
  }
  const change = async (tag: string, script: ScriptName, args: Array<string | number>, wrote?: (reply: unknown) => boolean): Promise<unknown> =>
    await guard(async () => await kept.changing(tag, async () => await write(tag, script, args, wrote)), () => { kept.enter(tag) })
  return {
    async kick (tag, sids, reason, accessTtlMs) {
      return Number(await guard(async () => await write(tag, 'wxauthKick', [reason, accessTtlMs, ...(sids === 'all' ? ['*'] : sids)], (ended) => Number(ended) > 0)))
    },

    async ban (tag, ban, accessTtlMs) {
      await change(tag, 'wxauthBan', [ban.until ?? 0, ban.reason, accessTtlMs])
    },

    async unban (tag) {
      await change(tag, 'wxauthUnban', [])
    },

    async setAccess (tag, access) {
      const packed = packAccess(access)
      await change(tag, 'wxauthSetAccess', [packed])
    },

    async userState (tag) {
      const key = keys.user(tag)
      const [access, ban, serviceBans] = await guard(async () =>
        await send(key, ['HMGET', key, ACCESS_FIELD, BAN_FIELD, SERVICE_BANS_FIELD])) as Array<string | null>
      const now = Date.now()
      const { bannedUntil, reason } = unpack('ban', ban)
      const until = Number(bannedUntil)
      return {
        ...unpackAccess(access),
        ban: ban !== null && (until === 0 || until > now) ? { until: until === 0 ? null : until, reason } : null,
        serviceBans: lastingBans(unpackServiceBans(serviceBans), now)
      }
    },

    async banService (tag, ban) {
      const reply = await change(tag, 'wxauthServiceBan', [ban.service, ban.until ?? 0, ban.reason], (r) => r !== 'full')
      if (reply === 'full') throw new ServiceBansFullError(String(MAX_SERVICE_BANS))
    },

    async unbanService (tag, service) {
      await change(tag, 'wxauthServiceBan', [service, '', ''])
    },

    async stepUp (ref, sessionKey) {
      const reply = await guard(async () => await run('wxauthStepUp', [keys.user(ref.tag)], ref.sid, sessionKey))
      if (!Array.isArray(reply)) return 'revoked'
      const [status, ...rest] = reply as string[]
      return status === 'ok' ? { status, at: Number(rest[0]) } : endOf(rest)
    },

    async rememberOpenid (appid, openid, sub, ttlSec) {
      const key = keys.openid(appid, openid)
      await guard(async () => await send(key, ['SET', key, sub, 'EX', String(ttlSec)]))
    },

    async subOfOpenid (appid, openid) {
      const key = keys.openid(appid, openid)
      const sub = await guard(async () => await send(key, ['GET', key]))
      return typeof sub === 'string' ? sub : null
    }
  }
}
