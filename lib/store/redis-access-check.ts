// The Redis store's access check, every authenticated request's path: one HMGET of the user's hash,
// answered from the read copy when it has it (redis-access-cache.ts).
//
// The command is built once per token and remembered by its jti: a client presents the same token
// for its whole life, and building the key, the field names and the read copy's id again on each
// request (new strings, each hashed again by every Map that looks them up) was most of what an
// authenticated request cost above the floor (BENCHMARKS.md, "The authenticated request's own work").
import type { SessionRef } from '../ids.js'
import { remember } from '../bounded-memo.js'
import { TOKENS_REMEMBERED } from '../verified-tokens.js'
import { endOf, liveAccess } from './access-state.js'
import { ACCESS_FIELD, BAN_FIELD, SEP, SERVICE_BANS_FIELD, blacklistField, firstPart, partOf, sessionField, unpack } from './redis-layout.js'
import type { Context } from './redis-context.js'
import type { CachedRead } from './redis-access-cache.js'
import type { SessionsStore } from './types.js'

/**
 * Whether an access token issued at `generation` (its `sgen` claim) shows that generation's rotation
 * delivered for the first time: it is the session's current generation (as the `hot` value says) and
 * not yet marked. False on every other request, which then writes nothing.
 */
export function deliversNow (hot: string, generation: number): boolean {
  const g = hot.indexOf(SEP, hot.indexOf(SEP) + 1)
  if (g < 0) return false // generation 0: nothing rotated, nothing to deliver
  const d = hot.indexOf(SEP, g + 1)
  const current = d < 0 ? hot.slice(g + 1) : hot.slice(g + 1, d)
  return current === String(generation) && (d < 0 || hot.slice(d + 1) !== current)
}

/** The HMGET of one token's check, and the session it names. */
interface Probe extends CachedRead { tag: string, sid: string }

/**
 * How many tokens' commands are remembered, the oldest first out: as many as the verified tokens the
 * gateway remembers, since a token beyond those costs a signature check anyway.
 */
const PROBES_KEPT = TOKENS_REMEMBERED

export function accessChecker (ctx: Context): SessionsStore['checkAccess'] {
  const { keys, send, run, guard, accessCache } = ctx
  const probes = new Map<string, Probe>()

  /** The command of `jti`'s check: remembered, unless a token of another session bore that jti. */
  function probeOf (ref: Readonly<SessionRef>, jti: string): Probe {
    const known = probes.get(jti)
    if (known !== undefined && known.tag === ref.tag && known.sid === ref.sid) return known
    const key = keys.user(ref.tag)
    const args = Object.freeze(['HMGET', key, sessionField(ref.sid, 'hot'), blacklistField(jti), sessionField(ref.sid, 'ended'), BAN_FIELD,
      sessionField(ref.sid, 'rotation'), ACCESS_FIELD, SERVICE_BANS_FIELD])
    return remember(probes, jti, { tag: ref.tag, sid: ref.sid, key, id: `${ref.sid} ${jti}`, args }, PROBES_KEPT)
  }

  const readOf = async (probe: Probe): Promise<unknown> => await send(probe.key, probe.args)

  /**
   * One HMGET: the session, the token's blacklist entry, the session's ended marker and rotation (its step-up time),
   * the user's ban, roles and permissions, and service bans; from the read copy when it has them (no round
   * trip). The first use of an access token issued with a rotation (`generation`) also marks that rotation
   * delivered: a second round trip, once per rotation. Expiry is compared with this process's clock.
   */
  return async function checkAccess (ref, jti, generation) {
    const probe = probeOf(ref, jti)
    const read = accessCache?.read(probe, readOf)
    const reply = read === undefined
      ? await guard(async () => await readOf(probe))
      : Array.isArray(read.reply) ? read.reply : await guard(async () => await read.reply)
    const [hot, blacklisted, ended, ban, rotation, access, serviceBans] = reply as Array<string | null>
    const now = Date.now()
    if (typeof ban === 'string') {
      const { bannedUntil, reason } = unpack('ban', ban)
      if (Number(bannedUntil) === 0 || Number(bannedUntil) > now) return { reason: 'banned', endedAt: Number(bannedUntil), by: reason }
    }
    if (typeof hot === 'string') {
      // A blacklist entry is answered while it is there, past its expiry too: that expiry is by Redis' clock,
      // and a gateway whose clock runs ahead would accept the revoked token for as long before it expires.
      // A pass over the user (a kick, a ban, a login that may reach the limit) or the key's expiry forgets it.
      if (blacklisted !== null || !(Number(firstPart(hot)) > now)) return 'revoked'
      if (generation !== undefined && deliversNow(hot, generation)) {
        // The answer does not depend on the mark: a failed one is tried again by the token's next use.
        await guard(async () => await run('wxauthDeliver', [probe.key], ref.sid, generation)).catch(() => {})
      }
      return liveAccess(access ?? null, serviceBans ?? null, rotation == null ? null : partOf('rotation', 'steppedUpAt', rotation), now)
    }
    if (typeof ended !== 'string') return 'revoked'
    const marker = unpack('ended', ended)
    return Number(marker.expiresAt) > now ? endOf([marker.reason, marker.endedAt, marker.detail]) : 'revoked'
  }
}
