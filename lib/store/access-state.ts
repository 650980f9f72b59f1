// What a live session's check hands back besides "alive" (LiveAccess), built from the values both
// stores keep, and what an ended one's marker says (endOf, as the Redis scripts and reader give it). Parsed roles are remembered by their packed value: the same few values come back on
// every request, and a check must not split strings each time.
import { unpackAccess, unpackServiceBans } from './redis-layout.js'
import { remember } from '../bounded-memo.js'
import type { LiveAccess, ServiceBan, SessionEnd } from './types.js'

const NONE: readonly string[] = Object.freeze([])
const NO_BANS: readonly ServiceBan[] = Object.freeze([])
const parsed = new Map<string, Readonly<{ roles: readonly string[], permissions: readonly string[] }>>()
const PARSED_MAX = 1000

function accessOf (packed: string | null): Readonly<{ roles: readonly string[], permissions: readonly string[] }> {
  if (packed === null || packed === '') return { roles: NONE, permissions: NONE }
  let hit = parsed.get(packed)
  if (hit === undefined) {
    const { roles, permissions } = unpackAccess(packed)
    hit = remember(parsed, packed, Object.freeze({ roles: Object.freeze(roles), permissions: Object.freeze(permissions) }), PARSED_MAX)
  }
  return hit
}

/** The bans that still last at `now`. */
export function lastingBans (bans: readonly ServiceBan[], now: number): ServiceBan[] {
  return bans.filter((b) => b.until === null || b.until > now)
}

/** A live session's access state from the stored values (null: none stored). */
export function liveAccess (access: string | null, serviceBans: string | null, steppedUpAt: string | null, now: number): LiveAccess {
  const { roles, permissions } = accessOf(access)
  const bans = serviceBans === null ? NO_BANS : Object.freeze(lastingBans(unpackServiceBans(serviceBans), now).map((b) => Object.freeze(b)))
  const at = steppedUpAt === null ? NaN : Number(steppedUpAt)
  return { status: 'ok', roles, permissions, steppedUpAt: Number.isFinite(at) && at > 0 ? at : null, serviceBans: bans }
}

/** An ended marker's reason, time and device type, as the scripts and the reader give them. */
const REASONS = new Set<SessionEnd['reason']>(['replaced', 'limit', 'kicked', 'banned'])
export const endOf = ([reason, endedAt, by]: Array<string | undefined>): SessionEnd =>
  ({ reason: REASONS.has(reason as SessionEnd['reason']) ? reason as SessionEnd['reason'] : 'replaced', endedAt: Number(endedAt), by: by ?? '' })
