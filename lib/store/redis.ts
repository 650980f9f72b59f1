// The production store: sessions, refresh-token state, access-token blacklist, login-code markers
// and rate-limit counters in Redis. Every key has a TTL. All of one user lives in one key (so "log
// out everywhere" is one DEL and every script touches one Redis Cluster slot). The layout is in
// redis-layout.ts, the scripts in redis-scripts.ts, the deadlines in deadlines.ts.
import { StoreUnavailableError } from '../errors.js'
import { createDeadlines } from './deadlines.js'
import { disconnectClient, sendCommandOf, type RedisClient } from './redis-client.js'
import { SID_CHARS, randomId } from '../ids.js'
import {
  CODE_PENDING, CODE_USED, blacklistField, deviceParts, firstPart, keyNames, packCredential, sessionField, subOf, unpack, unpackCredential
} from './redis-layout.js'
import { scriptRunner } from './redis-scripts.js'
import type {
  CodeClaim, CounterStore, CredentialStore, LoginCodeStore, RotateResult, SessionData, SessionEnd, SessionInfo, SessionPolicy,
  SessionStore, SessionsStore, TokenSubject
} from './types.js'

export interface RedisStoreOptions {
  client: RedisClient
  keyPrefix: string
  /** Upper bound on one operation; past it the operation fails with STORE_UNAVAILABLE. */
  timeoutMs: number
  /** Whether close() should disconnect the client (true only when the store created it). */
  ownsClient: boolean
}

/** What a rotation's reply says about the user: openid, unionid, sub, claims (never the session_key). */
function subjectOf ([openid = '', unionid = '', sub = '', claims = '']: string[]): TokenSubject {
  const session: TokenSubject = { sub: subOf(sub, openid), openid }
  if (unionid !== '') session.unionid = unionid
  if (claims !== '') session.claims = JSON.parse(claims) as Record<string, unknown>
  return session
}

const NO_POLICY: SessionPolicy = { exclusive: '', maxSessions: Number.MAX_SAFE_INTEGER, accessTtlMs: 0 }

/** An ended marker's reason, time and device type, as the scripts and the reader give them. */
const endOf = ([reason, endedAt, by]: Array<string | undefined>): SessionEnd =>
  ({ reason: reason === 'limit' ? 'limit' : 'replaced', endedAt: Number(endedAt), by: by ?? '' })

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

/** What every part of the store sends its commands with. */
interface Context {
  keys: ReturnType<typeof keyNames>
  send: ReturnType<typeof sendCommandOf>
  run: ReturnType<typeof scriptRunner>
  guard: ReturnType<typeof createDeadlines>['guard']
}

export function createRedisStore (opts: RedisStoreOptions): SessionStore {
  const { client } = opts
  const send = sendCommandOf(client)
  const deadlines = createDeadlines(opts.timeoutMs)
  const ctx: Context = { keys: keyNames(opts.keyPrefix), send, run: scriptRunner(send), guard: deadlines.guard }
  const guard = deadlines.guard

  return {
    kind: 'redis',
    ...redisSessions(ctx),
    ...redisLoginCodes(ctx),
    ...redisCounters(ctx),
    ...redisCredentials(ctx),

    async ping () {
      const answer = await guard(async () => await send(undefined, ['PING']))
      // A client that answers anything else (a callback-style wrapper answers undefined) is not usable.
      if (answer !== 'PONG') throw new StoreUnavailableError({ cause: new Error(`PING answered ${String(answer)}`) })
    },

    async close () {
      // Operations in flight get until their deadline, then the connection is dropped: a Redis
      // that hangs cannot hold the process open.
      if (opts.ownsClient) {
        await deadlines.drain()
        disconnectClient(client)
      }
      deadlines.stop()
    }
  }
}

function redisSessions ({ keys, send, run, guard }: Context): SessionsStore {
  return {
    async createSession (ref, data, refreshHash, ttlSec, policy = NO_POLICY) {
      const device = data.device === undefined ? ['', '', '', ''] : deviceParts(data.device)
      const [status, detail] = await guard(async () => await run('wxauthCreate', [keys.user(ref.tag)], ttlSec * 1000, ref.sid, refreshHash,
        data.sub, data.openid, data.unionid ?? '', data.sessionKey, data.claims === undefined ? '' : JSON.stringify(data.claims),
        ...device, policy.exclusive, policy.maxSessions, policy.accessTtlMs)) as [string, string | number]
      return status === 'refused' ? { status, deviceType: String(detail) } : { status: 'created', ended: Number(detail) }
    },

    async listSessions (tag) {
      const key = keys.user(tag)
      const flat = await guard(async () => await send(key, ['HGETALL', key])) as string[] | Record<string, string>
      return sessionsIn(Array.isArray(flat) ? pairsToRecord(flat) : flat, Date.now())
    },

    async getSession (ref) {
      const key = keys.user(ref.tag)
      const [hot, identity, secret] = await guard(async () => await send(key,
        ['HMGET', key, sessionField(ref.sid, 'hot'), sessionField(ref.sid, 'identity'), sessionField(ref.sid, 'secret')])) as Array<string | null>
      if (typeof hot !== 'string' || !(Number(firstPart(hot)) > Date.now())) return null
      const { openid, unionid } = unpack('identity', identity)
      const { sessionKey, createdAt, sub, claims } = unpack('secret', secret)
      const data: SessionData = { sub: subOf(sub, openid), openid, sessionKey, createdAt: Number(createdAt) }
      if (unionid !== '') data.unionid = unionid
      if (claims !== '') data.claims = JSON.parse(claims) as Record<string, unknown>
      return data
    },

    async rotateRefresh (ref, input): Promise<RotateResult> {
      const reply = await guard(async () => await run('wxauthRotate', [keys.user(ref.tag)],
        ref.sid, input.generation, input.presentedHash, input.nextHash, input.nonce, input.graceMs,
        input.ttlSec * 1000, input.maxAgeSec * 1000))
      if (!Array.isArray(reply)) return { status: reply === 'behind' ? 'behind' : 'invalid' }
      const [status, ttl, ...rest] = reply as string[]
      if (status === 'ended') return { status, end: endOf([ttl, ...rest]) }
      const session = subjectOf(rest)
      if (status === 'rotated') return { status, session, ttlMs: Number(ttl) }
      const [nonce = '', currentHash = '', inGrace] = rest.slice(4)
      return { status: 'predecessor', session, ttlMs: Number(ttl), nonce, currentHash, inGrace: inGrace === '1' }
    },

    // The hot path: one plain HMGET, no script. Expiry is compared with this process's clock.
    async checkAccess (ref, jti) {
      const key = keys.user(ref.tag)
      const [hot, banned, ended] = await guard(async () => await send(key,
        ['HMGET', key, sessionField(ref.sid, 'hot'), blacklistField(jti), sessionField(ref.sid, 'ended')])) as Array<string | null>
      const now = Date.now()
      if (typeof hot === 'string') return banned === null && Number(firstPart(hot)) > now ? 'ok' : 'revoked'
      if (typeof ended !== 'string') return 'revoked'
      const marker = unpack('ended', ended)
      return Number(marker.expiresAt) > now ? endOf([marker.reason, marker.endedAt, marker.detail]) : 'revoked'
    },

    async revokeSession (ref) {
      await guard(async () => await run('wxauthRevoke', [keys.user(ref.tag)], ref.sid))
    },

    async revokeUser (tag) {
      return Number(await guard(async () => await run('wxauthRevokeUser', [keys.user(tag)])))
    },

    async blacklist (ref, jti, ttlSec) {
      await guard(async () => await run('wxauthBlacklist', [keys.user(ref.tag)], ref.sid, jti, Math.max(1, ttlSec) * 1000))
    }
  }
}

function redisLoginCodes ({ keys, send, run, guard }: Context): LoginCodeStore {
  return {
    async claimCode (codeId, pendingTtlMs) {
      const key = keys.code(codeId)
      // Each claim is its own value, so that one answered too late (a frozen Redis) is released by
      // this claim alone: a client that got 503 STORE_UNAVAILABLE may use its code again.
      const claim = `${CODE_PENDING}${randomId(9)}`
      const release = (outcome: CodeClaim): void => {
        if (outcome === 'claimed') run('wxauthDeleteIfEquals', [key], claim).catch(() => {})
      }
      return await guard(async (): Promise<CodeClaim> => {
        for (let attempt = 0; attempt < 2; attempt++) {
          if (await send(key, ['SET', key, claim, 'PX', String(pendingTtlMs), 'NX']) === 'OK') return 'claimed'
          const v = await send(key, ['GET', key])
          if (v !== null) return v === CODE_USED ? 'used' : 'pending'
        }
        return 'pending' // claimed and released in between, twice: treat as in use
      }, release)
    },

    async settleCode (codeId, accepted, usedTtlMs) {
      await guard(async () => {
        const key = keys.code(codeId)
        await send(key, accepted ? ['SET', key, CODE_USED, 'PX', String(usedTtlMs)] : ['DEL', key])
      })
    }
  }
}

function redisCounters ({ keys, run, guard }: Context): CounterStore {
  return {
    async hit (key, windowMs) {
      const [current, ttl] = await guard(async () => await run('wxauthHit', [keys.rateLimit + key], windowMs)) as [number, number]
      return { current: Number(current), ttlMs: Number(ttl) }
    }
  }
}

function redisCredentials ({ keys, send, run, guard }: Context): CredentialStore {
  return {
    async getCredential (name) {
      const key = keys.credential(name)
      const packed = await guard(async () => await send(key, ['GET', key]))
      if (typeof packed !== 'string') return null
      const credential = unpackCredential(packed)
      return credential.expiresAt > Date.now() ? credential : null
    },

    async lockCredential (name, owner, ttlMs) {
      const key = keys.credentialLock(name)
      return await guard(async () => await send(key, ['SET', key, owner, 'PX', String(ttlMs), 'NX']) === 'OK')
    },

    async saveCredential (name, credential, owner) {
      const ttlMs = credential.expiresAt - Date.now()
      if (ttlMs <= 0) return
      await guard(async () => await run('wxauthSaveCredential', [keys.credential(name), keys.credentialLock(name)],
        packCredential(credential), ttlMs, owner))
    },

    async unlockCredential (name, owner) {
      await guard(async () => await run('wxauthDeleteIfEquals', [keys.credentialLock(name)], owner))
    }
  }
}
