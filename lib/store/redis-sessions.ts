// The Redis store's sessions: creating (under the session policy), reading, rotating, checking,
// ending, kicking and banning, over one hash per user (redis-layout.ts, redis-scripts.ts).
import { SID_CHARS } from '../ids.js'
import { accessChecker } from './redis-access-check.js'
import { endOf } from './access-state.js'
import { ACCESS_FROM_LOGIN, deviceParts, firstPart, packAccess, sessionField, subOf, unpack } from './redis-layout.js'
import { durably, type Context } from './redis-context.js'
import type { RotateResult, SessionData, SessionInfo, SessionPolicy, SessionsStore, TokenSubject } from './types.js'

/** What a rotation's reply says about the user: openid, unionid, sub, claims (never the session_key). */
function subjectOf ([openid = '', unionid = '', sub = '', claims = '']: string[]): TokenSubject {
  const session: TokenSubject = { sub: subOf(sub, openid), openid }
  if (unionid !== '') session.unionid = unionid
  if (claims !== '') session.claims = JSON.parse(claims) as Record<string, unknown>
  return session
}

const NO_POLICY: SessionPolicy = { exclusive: '', maxSessions: Number.MAX_SAFE_INTEGER, accessTtlMs: 0 }

const pairsToRecord = (flat: string[]): Record<string, string> =>
  Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]]))

/** The live sessions in a user's hash, as their user sees them. */
function sessionsIn (fields: Record<string, string>, now: number): SessionInfo[] {
  const out: SessionInfo[] = []
  for (const [name, value] of Object.entries(fields)) {
    if (name.length !== SID_CHARS) continue
    const { expiresAt } = unpack('hot', value)
    if (!(Number(expiresAt) > now)) continue
    const device = unpack('device', fields[sessionField(name, 'device')])
    const { rotatedAt } = unpack('rotation', fields[sessionField(name, 'rotation')])
    out.push({
      sid: name,
      ...device,
      createdAt: Number(unpack('secret', fields[sessionField(name, 'secret')]).createdAt),
      lastRefreshAt: rotatedAt === '' ? null : Number(rotatedAt),
      expiresAt: Number(expiresAt)
    })
  }
  return out.sort((a, b) => a.createdAt - b.createdAt)
}

/** Whether a reply of the script that opens or rotates a session says it wrote: `[status, …]`. */
const wroteAs = (status: string) => (reply: unknown): boolean => Array.isArray(reply) && reply[0] === status
const CREATED = wroteAs('created')
const ROTATED = wroteAs('rotated')

/**
 * `enter`: a login or a refresh in a key kept for good enters its user in the sweep's index
 * (redis-kept.ts) if it is not there, not waited for: a key kept for good by a version before the
 * sweep joins the index at its user's next login or refresh.
 */
export function redisSessions (ctx: Context, enter: (tag: string) => void): Omit<SessionsStore, 'kick' | 'ban' | 'unban'> {
  const { keys, send, guard } = ctx
  /** A script that opens, rotates or revokes a session, answered once it is durable (redis-context.ts). */
  const durable = (key: string, script: (run: Context['run']) => Promise<unknown>, wrote?: (reply: unknown) => boolean): Promise<unknown> =>
    guard(() => durably(ctx, key, script, wrote))
  return {
    async createSession (ref, data, refreshHash, ttlSec, policy = NO_POLICY) {
      const device = data.device === undefined ? ['', '', '', ''] : deviceParts(data.device)
      const key = keys.user(ref.tag)
      const [status, detail, ...more] = await durable(key, (run) => run('wxauthCreate', [key], ttlSec * 1000, ref.sid, refreshHash,
        data.sub, data.openid, data.unionid ?? '', data.sessionKey, data.claims === undefined ? '' : JSON.stringify(data.claims),
        ...device, policy.exclusive, policy.maxSessions, policy.accessTtlMs,
        data.access === undefined ? '0' : '1', data.access === undefined ? '' : packAccess(data.access, ACCESS_FROM_LOGIN),
        data.ageFrom === undefined ? '' : Math.floor(data.ageFrom)), CREATED) as [string, string | number, ...string[]]
      if (status === 'ended') return { status: 'banned', end: endOf([String(detail), ...more]) }
      if (status === 'refused') return { status, deviceType: String(detail) }
      if (more[0] === 'kept') enter(ref.tag)
      return { status: 'created', ended: Number(detail) }
    },

    async listSessions (tag) {
      const key = keys.user(tag)
      const flat = await guard(async () => await send(key, ['HGETALL', key])) as string[] | Record<string, string>
      return sessionsIn(Array.isArray(flat) ? pairsToRecord(flat) : flat, Date.now())
    },

    async getSession (ref) {
      const key = keys.user(ref.tag)
      const [hot, identity, secret, rotation] = await guard(async () => await send(key,
        ['HMGET', key, sessionField(ref.sid, 'hot'), sessionField(ref.sid, 'identity'), sessionField(ref.sid, 'secret'), sessionField(ref.sid, 'rotation')])) as Array<string | null>
      if (typeof hot !== 'string' || !(Number(firstPart(hot)) > Date.now())) return null
      const { openid, unionid } = unpack('identity', identity)
      const { sessionKey, createdAt, sub, claims } = unpack('secret', secret)
      const data: SessionData = { sub: subOf(sub, openid), openid, sessionKey, createdAt: Number(createdAt) }
      const { ageFrom } = unpack('rotation', rotation)
      if (ageFrom !== '') data.ageFrom = Number(ageFrom)
      if (unionid !== '') data.unionid = unionid
      if (claims !== '') data.claims = JSON.parse(claims) as Record<string, unknown>
      return data
    },

    async rotateRefresh (ref, input): Promise<RotateResult> {
      const key = keys.user(ref.tag)
      const reply = await durable(key, (run) => run('wxauthRotate', [key],
        ref.sid, input.generation, input.presentedHash, input.nextHash, input.nonce, input.graceMs,
        input.ttlSec * 1000, input.maxAgeSec * 1000), ROTATED)
      if (!Array.isArray(reply)) return { status: reply === 'behind' ? 'behind' : 'invalid' }
      const [status, ttl, ...rest] = reply as string[]
      if (status === 'ended') return { status, end: endOf([ttl, ...rest]) }
      const session = subjectOf(rest)
      if (status === 'rotated' && rest[4] === 'kept') enter(ref.tag)
      if (status === 'rotated') return { status, session, ttlMs: Number(ttl) }
      const [nonce = '', currentHash = '', inGrace, delivered] = rest.slice(4)
      return { status: 'predecessor', session, ttlMs: Number(ttl), nonce, currentHash, inGrace: inGrace === '1', delivered: delivered === '1' }
    },

    // The hot path: one plain HMGET, no script (redis-access-check.ts).
    checkAccess: accessChecker(ctx),

    async revokeSession (ref) {
      const key = keys.user(ref.tag)
      await durable(key, (run) => run('wxauthRevoke', [key], ref.sid))
    },

    async revokeUser (tag) {
      const key = keys.user(tag)
      return Number(await durable(key, (run) => run('wxauthRevokeUser', [key]), (ended) => Number(ended) > 0))
    },

    async blacklist (ref, jti, ttlSec) {
      const key = keys.user(ref.tag)
      await durable(key, (run) => run('wxauthBlacklist', [key], ref.sid, jti, Math.max(1, ttlSec) * 1000), (listed) => Number(listed) === 1)
    }
  }
}
