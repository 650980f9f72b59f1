// Refresh tokens: their shape, the successor of each rotation and the mac that tells ours from a
// forgery. Pure: no I/O, no Fastify.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { b64url, randomId, type SessionRef } from './ids.js'

const SECRET_BYTES = 32 // 256 bits in every refresh token
const MAC_BYTES = 16
// A generation is a decimal counter of up to 10 digits (a rotation a second for 300 years; the
// successor of the last one does not parse, so its session just ends).
const REFRESH_RE = /^(([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{12})\.(0|[1-9][0-9]{0,9})\.[A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{22})$/
/** A refresh token's shape anywhere in a text (a request id with it after a prefix). */
export const REFRESH_TOKEN_INSIDE = new RegExp(REFRESH_RE.source.slice(1, -1))

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
  function derive (keys: RefreshKeys, predecessor: string, nonce: string, parsed = parseRefreshToken(predecessor)): string {
    if (parsed === null) throw new Error('not a refresh token')
    const secret = createHmac('sha256', keys.successorKey).update(predecessor).update('\u0000').update(nonce).digest()
    return seal(keys, `${parsed.ref.tag}.${parsed.ref.sid}.${parsed.generation + 1}.${b64url(secret)}`)
  }
  // Compared as text: a base64url string has variants that decode to the same bytes.
  const sameText = (a: string, b: string): boolean => timingSafeEqual(Buffer.from(a), Buffer.from(b))

  return {
    /** A session's first token. */
    first: (ref: SessionRef): string => seal(current, `${ref.tag}.${ref.sid}.0.${randomId(SECRET_BYTES)}`),

    /**
     * The successor of `predecessor` (a token of our shape) with a rotation's nonce; `parsed`, when
     * the caller has it, is what parseRefreshToken(predecessor) gave (not parsed a second time).
     */
    successor: (predecessor: string, nonce: string, parsed?: ParsedRefreshToken): string => derive(current, predecessor, nonce, parsed),

    /** The successor a rotation made before the JWT secret changed (JWT_SECRET_PREVIOUS), if one is set. */
    previousSuccessor: (predecessor: string, nonce: string, parsed?: ParsedRefreshToken): string | undefined =>
      previous === undefined ? undefined : derive(previous, predecessor, nonce, parsed),

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
