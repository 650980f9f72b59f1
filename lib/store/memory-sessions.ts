// The memory store's sessions: what the Redis store keeps in a user's hash, in maps, with the same
// rules (lib/store/memory.ts assembles the store).
import type { SessionRef } from '../ids.js'
import { ENDED_SLACK, MAX_ENDED, deviceParts, unpack } from './redis-layout.js'
import { accessIn, banOf, setAccessIn } from './memory-user.js'
import type {
  Access, Ban, CreateResult, Credential, DeviceInfo, NewSession, RotateInput, RotateResult, SessionData, SessionEnd, SessionInfo, SessionPolicy,
  ServiceBan, SessionsStore, TokenSubject
} from './types.js'

export interface SessionEntry {
  data: SessionData
  /** Digest of the current refresh token, and its generation. */
  current: string
  generation: number
  /** When the current token was issued by a rotation (the grace window of its predecessor), with what nonce. */
  rotatedAt: number
  nonce: string
  /** The generation whose rotation is known to have reached its client (an access token of it was used); 0 none. */
  delivered: number
  expiresAt: number
  /** Blacklisted token ids of this session, with when they may be forgotten. */
  blacklist: Map<string, number>
  device: Required<DeviceInfo> | undefined
  /** When the session last stepped up (ms); 0 when never. */
  steppedUpAt: number
}

export interface Expiring<T> { value: T, expiresAt: number }

/** Everything the memory store holds, with its clock. */
export interface State {
  now: () => number
  users: Map<string, Map<string, SessionEntry>> // tag -> sid -> session
  ended: Map<string, Map<string, Expiring<SessionEnd>>> // tag -> sid -> why another login ended it
  codes: Map<string, Expiring<'pending' | 'used'>>
  hits: Map<string, Expiring<number>>
  credentials: Map<string, Credential>
  locks: Map<string, Expiring<string>>
  bans: Map<string, Ban> // tag -> ban
  access: Map<string, Access & { fromLogin: boolean }> // tag -> roles and permissions, and whether resolveUser gave them
  serviceBans: Map<string, ServiceBan[]> // tag -> bans from single services
  openids: Map<string, Expiring<string>> // appid NUL openid -> sub
}

export function liveSession ({ users, now }: State, ref: SessionRef): SessionEntry | undefined {
  const entry = users.get(ref.tag)?.get(ref.sid)
  if (entry === undefined) return undefined
  if (entry.expiresAt <= now()) {
    dropSession({ users }, ref)
    return undefined
  }
  return entry
}

export function dropSession ({ users }: Pick<State, 'users'>, ref: SessionRef): void {
  const sessions = users.get(ref.tag)
  sessions?.delete(ref.sid)
  if (sessions?.size === 0) users.delete(ref.tag)
}

export function memorySessions (state: State): Omit<SessionsStore, 'kick' | 'ban' | 'unban'> {
  const { users, now } = state
  return {
    async createSession (ref, data, refreshHash, ttlSec, policy) {
      return createIn(state, ref, data, refreshHash, ttlSec, policy)
    },

    async listSessions (tag) {
      const out: SessionInfo[] = []
      for (const sid of [...(users.get(tag)?.keys() ?? [])]) {
        const e = liveSession(state, { tag, sid })
        if (e === undefined) continue
        out.push({
          sid,
          ...(e.device ?? { deviceType: '', deviceName: '', ip: '', userAgent: '' }),
          createdAt: e.data.createdAt,
          lastRefreshAt: e.generation > 0 ? e.rotatedAt : null,
          expiresAt: e.expiresAt
        })
      }
      return out.sort((a, b) => a.createdAt - b.createdAt)
    },

    async getSession (ref) {
      const e = liveSession(state, ref)
      return e === undefined ? null : structuredClone(e.data)
    },

    async rotateRefresh (ref, input) { return rotate(state, ref, input) },

    async checkAccess (ref, jti, generation) {
      const banned = banOf(state, ref.tag)
      if (banned !== undefined) return banned
      const e = liveSession(state, ref)
      if (e === undefined) return endOf(state, ref) ?? 'revoked'
      const until = e.blacklist.get(jti)
      if (until !== undefined && until > now()) return 'revoked'
      e.blacklist.delete(jti) // past its TTL: forgotten, as the Redis store forgets it
      if (generation !== undefined && generation > 0 && generation === e.generation) e.delivered = generation
      return accessIn(state, ref.tag, e)
    },

    async revokeSession (ref) {
      dropSession(state, ref)
    },

    async revokeUser (tag) {
      const sessions = [...(users.get(tag)?.keys() ?? [])]
      let live = 0
      for (const sid of sessions) {
        if (liveSession(state, { tag, sid }) !== undefined) live++
      }
      users.delete(tag)
      state.ended.delete(tag) // as the Redis store: logging out everywhere forgets why sessions ended, not a ban
      return live
    },

    async blacklist (ref, jti, ttlSec) {
      liveSession(state, ref)?.blacklist.set(jti, now() + Math.max(1, ttlSec) * 1000)
    }
  }
}

function rotate (state: State, ref: SessionRef, input: RotateInput): RotateResult {
  const banned = banOf(state, ref.tag)
  if (banned !== undefined) return { status: 'ended', end: banned }
  const e = liveSession(state, ref)
  if (e === undefined) {
    const end = endOf(state, ref)
    return end === undefined ? { status: 'invalid' } : { status: 'ended', end }
  }
  const t = state.now()
  if (input.generation === e.generation && input.presentedHash === e.current) {
    const ttlMs = Math.min(input.ttlSec * 1000, (e.data.ageFrom ?? e.data.createdAt) + input.maxAgeSec * 1000 - t)
    if (ttlMs <= 0) {
      dropSession(state, ref)
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
      inGrace: t - e.rotatedAt <= input.graceMs,
      delivered: e.delivered === e.generation
    }
  }
  return { status: input.generation < e.generation - 1 ? 'behind' : 'invalid' }
}

/** Why a session is gone, when another login ended it (and its marker has not expired). */
export function endOf ({ ended, now }: State, ref: SessionRef): SessionEnd | undefined {
  const marker = ended.get(ref.tag)?.get(ref.sid)
  return marker !== undefined && marker.expiresAt > now() ? { ...marker.value } : undefined
}

/** A user's live sessions (dropping the expired ones met on the way). */
export function liveSessionsOf (state: State, tag: string): Array<{ sid: string, e: SessionEntry }> {
  return [...(state.users.get(tag)?.keys() ?? [])].flatMap((sid) => {
    const e = liveSession(state, { tag, sid })
    return e === undefined ? [] : [{ sid, e }]
  })
}

/**
 * Ends sessions of the user behind `tag` as the Redis scripts' endSession does: each leaves a marker
 * its tokens are told, kept until its last token could come back; expired markers go, and at most
 * MAX_ENDED stay: past it the oldest are forgotten, down to MAX_ENDED - ENDED_SLACK.
 */
export function endSessions (state: State, tag: string, ending: Array<{ sid: string, e: SessionEntry }>, end: Omit<SessionEnd, 'endedAt'>, accessTtlMs: number): void {
  const t = state.now()
  const markers = state.ended.get(tag) ?? new Map<string, Expiring<SessionEnd>>()
  for (const [sid, m] of markers) if (m.expiresAt <= t) markers.delete(sid)
  for (const { sid, e } of ending) {
    dropSession(state, { tag, sid })
    markers.set(sid, { value: { ...end, endedAt: t }, expiresAt: Math.max(e.expiresAt, t + accessTtlMs) })
  }
  if (markers.size > MAX_ENDED) {
    const oldest = [...markers].sort((a, b) => a[1].value.endedAt - b[1].value.endedAt)
    for (const [sid] of oldest.slice(0, markers.size - MAX_ENDED + ENDED_SLACK)) markers.delete(sid)
  }
  if (markers.size > 0) state.ended.set(tag, markers)
  else state.ended.delete(tag)
}

/** As the Redis store's create script: the policy decided in the same step that creates the session. */
function createIn (state: State, ref: SessionRef, input: NewSession, refreshHash: string, ttlSec: number, policy?: SessionPolicy): CreateResult {
  const { users, now } = state
  const banned = banOf(state, ref.tag)
  if (banned !== undefined) return { status: 'banned', end: banned }
  const t = now()
  const { device: deviceInput, access: _access, ...data } = input
  const device = deviceInput === undefined ? undefined : deviceOf(deviceInput)
  const type = device?.deviceType ?? ''
  const live = liveSessionsOf(state, ref.tag)
  const sameType = (e: SessionEntry): boolean => e.device?.deviceType === type
  const exclusive = policy?.exclusive ?? ''
  if (exclusive === 'refuse' && live.some(({ e }) => sameType(e))) return { status: 'refused', deviceType: type }
  const replaced = live.filter(({ e }) => exclusive === 'all' || (exclusive === 'same' && sameType(e)))
  const kept = live.filter((s) => !replaced.includes(s))
  const max = policy?.maxSessions ?? Number.MAX_SAFE_INTEGER
  const active = (e: SessionEntry): number => Math.max(e.data.createdAt, e.rotatedAt)
  const evicted = kept.length >= max ? [...kept].sort((a, b) => active(a.e) - active(b.e)).slice(0, kept.length - max + 1) : []
  const accessTtlMs = policy?.accessTtlMs ?? 0
  endSessions(state, ref.tag, replaced, { reason: 'replaced', by: type }, accessTtlMs)
  endSessions(state, ref.tag, evicted, { reason: 'limit', by: type }, accessTtlMs)
  let sessions = users.get(ref.tag)
  if (sessions === undefined) users.set(ref.tag, (sessions = new Map()))
  sessions.set(ref.sid, {
    data: { ...structuredClone(data), createdAt: t },
    current: refreshHash,
    generation: 0,
    rotatedAt: 0,
    nonce: '',
    delivered: 0,
    expiresAt: t + ttlSec * 1000,
    blacklist: new Map(),
    device,
    steppedUpAt: 0
  })
  if (input.access !== undefined) setAccessIn(state, ref.tag, input.access, true)
  return { status: 'created', ended: replaced.length + evicted.length }
}

/** A device as the Redis store keeps it: cut to the same bounds. */
function deviceOf (d: DeviceInfo): Required<DeviceInfo> {
  const [deviceType = '', deviceName = '', ip = '', userAgent = ''] = deviceParts(d)
  return unpack('device', [deviceType, deviceName, ip, userAgent].join('\u0001'))
}

function subjectOf (data: SessionData): TokenSubject {
  const out: TokenSubject = { sub: data.sub, openid: data.openid }
  if (data.unionid !== undefined) out.unionid = data.unionid
  if (data.claims !== undefined) out.claims = structuredClone(data.claims)
  return out
}
