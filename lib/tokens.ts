// Pure helpers for identifiers and refresh tokens. No I/O, no Fastify.
import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto'

const b64url = (buf: Buffer): string => buf.toString('base64url')

// randomBytes() costs ~5 µs a call whatever its size; ids are drawn from a pool refilled 4 KiB at a time.
const POOL_SIZE = 4096
let pool = randomBytes(POOL_SIZE)
let poolOffset = 0

/** A random identifier of `bytes` bytes (at most 64), base64url. */
export function randomId (bytes: number): string {
  if (poolOffset + bytes > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE)
    poolOffset = 0
  }
  const id = b64url(pool.subarray(poolOffset, poolOffset + bytes))
  // Zero what was handed out, so the pool never holds a secret that is already in use.
  pool.fill(0, poolOffset, poolOffset + bytes)
  poolOffset += bytes
  return id
}

/** A short, fixed-length digest (128 bits, base64url) used to index secrets without storing them. */
export const digest = (value: string): string =>
  b64url(hash('sha256', value, 'buffer').subarray(0, 16))

// Short on purpose: both are repeated in Redis key and field names. A tag has 96 bits, so two users
// practically never share one; a session id only has to be unique among one user's sessions (72 bits).
const TAG_CHARS = 16

// A tag is a SHA-256, needed on every authenticated request, refresh and logout, and the same
// users come back again and again: recent ones are remembered (only users who logged in or hold
// a token this gateway signed ever get here).
const TAG_MEMO_SIZE = 10_000
const tagMemo = new Map<string, string>()

/**
 * The Redis Cluster hash tag of one user of one mini program. Every key of that user carries it,
 * so a user's keys live in one slot and can change together atomically.
 */
export function userTag (appid: string, sub: string): string {
  const input = `${appid}\u0000${sub}`
  let tag = tagMemo.get(input)
  if (tag === undefined) {
    if (tagMemo.size >= TAG_MEMO_SIZE) tagMemo.clear()
    tag = digest(input).slice(0, TAG_CHARS)
    tagMemo.set(input, tag)
  }
  return tag
}

/** Where a session lives; both parts come from a token, never from the client's word alone. */
export interface SessionRef {
  tag: string
  sid: string
}

const SID_BYTES = 9
export const SID_CHARS = 12
const SECRET_BYTES = 32 // 256 bits in every refresh token
const MAC_BYTES = 16
const NONCE_BYTES = 12
// A generation is a decimal counter of up to 10 digits (a rotation a second for 300 years; the
// successor of the last one does not parse, so its session just ends).
const REFRESH_RE = /^(([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{12})\.(0|[1-9][0-9]{0,9})\.[A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{22})$/

export const newSessionId = (): string => randomId(SID_BYTES)
export const newJti = (): string => randomId(12)
/** The randomness a rotation draws; kept in the session so a retry derives the same successor. */
export const newNonce = (): string => randomId(NONCE_BYTES)

/** A refresh token as presented: the session it claims to belong to, and its generation. */
export interface ParsedRefreshToken {
  ref: SessionRef
  generation: number
}

/** The session and generation a refresh token claims, or null when it does not have our shape. */
export function parseRefreshToken (token: string): ParsedRefreshToken | null {
  const m = REFRESH_RE.exec(token)
  if (m === null) return null
  return { ref: { tag: m[2] as string, sid: m[3] as string }, generation: Number(m[4]) }
}

/**
 * Refresh tokens: `<tag>.<sid>.<generation>.<secret>.<mac>`. A session's first token (generation
 * 0) has a random secret; each successor is the next generation with HMAC(successor key,
 * predecessor, nonce) as its secret, the nonce being fresh randomness drawn at that rotation and
 * kept in the session (so a retry gets the same successor). Only a digest of the current token is
 * stored: neither a copy of Redis, nor the key, nor the key with older tokens produces the
 * current one. The mac (HMAC of the rest under a second key) proves a token was issued by a
 * gateway holding the key; it is only consulted to tell reuse of an older token from a forgery.
 * Both keys are derived from the JWT secret, so one secret is configured; tokens issued under the
 * previous one (JWT_SECRET_PREVIOUS) are still recognised.
 */
export function refreshTokens (jwtSecret: string, previousSecret?: string) {
  interface RefreshKeys { successorKey: Buffer, macKey: Buffer }
  const keysOf = (secret: string): RefreshKeys => ({
    successorKey: createHmac('sha256', secret).update('fastify-wechat-auth/refresh-successor').digest(),
    macKey: createHmac('sha256', secret).update('fastify-wechat-auth/refresh-mac').digest()
  })
  const current = keysOf(jwtSecret)
  const previous = previousSecret === undefined ? undefined : keysOf(previousSecret)
  const macOf = (macKey: Buffer, body: string): string => b64url(createHmac('sha256', macKey).update(body).digest().subarray(0, MAC_BYTES))
  const seal = (keys: RefreshKeys, body: string): string => `${body}.${macOf(keys.macKey, body)}`
  function derive (keys: RefreshKeys, predecessor: string, nonce: string): string {
    const parsed = parseRefreshToken(predecessor)
    if (parsed === null) throw new Error('not a refresh token')
    const secret = createHmac('sha256', keys.successorKey).update(predecessor).update('\u0000').update(nonce).digest()
    return seal(keys, `${parsed.ref.tag}.${parsed.ref.sid}.${parsed.generation + 1}.${b64url(secret)}`)
  }
  // Compared as text: a base64url string has variants that decode to the same bytes.
  const sameText = (a: string, b: string): boolean => timingSafeEqual(Buffer.from(a), Buffer.from(b))

  return {
    /** A session's first token. */
    first: (ref: SessionRef): string => seal(current, `${ref.tag}.${ref.sid}.0.${randomId(SECRET_BYTES)}`),

    /** The successor of `predecessor` (a token of our shape) with a rotation's nonce. */
    successor: (predecessor: string, nonce: string): string => derive(current, predecessor, nonce),

    /** The successor a rotation made before the JWT secret changed (JWT_SECRET_PREVIOUS), if one is set. */
    previousSuccessor: (predecessor: string, nonce: string): string | undefined =>
      previous === undefined ? undefined : derive(previous, predecessor, nonce),

    /** Whether a token of our shape was issued under this secret or the previous one (a forged one was not). */
    issued (token: string): boolean {
      const m = REFRESH_RE.exec(token)
      if (m === null) return false
      const body = m[1] as string
      const mac = m[5] as string
      return sameText(mac, macOf(current.macKey, body)) || (previous !== undefined && sameText(mac, macOf(previous.macKey, body)))
    }
  }
}

export type RefreshTokens = ReturnType<typeof refreshTokens>
