// Pure helpers for identifiers and refresh tokens. No I/O, no Fastify.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'

const b64url = (buf: Buffer): string => buf.toString('base64url')

/** A random identifier of `bytes` bytes, base64url. */
export const randomId = (bytes: number): string => b64url(randomBytes(bytes))

/** A short, fixed-length digest (128 bits, base64url) used to index secrets without storing them. */
export const digest = (value: string): string =>
  b64url(createHash('sha256').update(value).digest().subarray(0, 16))

/**
 * The Redis Cluster hash tag of one user of one mini program. Every key of that user carries it,
 * so a user's keys live in one slot and can change together atomically.
 */
export const userTag = (appid: string, sub: string): string => digest(`${appid}\u0000${sub}`)

/** Where a session lives; both parts come from a token, never from the client's word alone. */
export interface SessionRef {
  tag: string
  sid: string
}

const SID_BYTES = 12
const SECRET_BYTES = 32 // 256 bits of randomness in every refresh token
const REFRESH_RE = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/

export const newSessionId = (): string => randomId(SID_BYTES)
export const newJti = (): string => randomId(12)

/** An opaque refresh token: `<tag>.<sid>.<secret>`. Only its digest is ever stored. */
export const newRefreshToken = (ref: SessionRef): string =>
  `${ref.tag}.${ref.sid}.${randomId(SECRET_BYTES)}`

/** The session a refresh token claims to belong to, or null when it is not one of ours. */
export function parseRefreshToken (token: string): SessionRef | null {
  const m = REFRESH_RE.exec(token)
  if (m === null) return null
  return { tag: m[1] as string, sid: m[2] as string }
}

// The successor of a refresh token is kept for the grace window, encrypted under a key that only
// the holder of the predecessor can derive, so the store never holds a usable token in clear.
const successorKey = (predecessor: string): Buffer =>
  createHash('sha256').update('fastify-wechat-auth/successor\u0000').update(predecessor).digest()

export function sealSuccessor (predecessor: string, successor: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', successorKey(predecessor), iv)
  const body = Buffer.concat([cipher.update(successor, 'utf8'), cipher.final()])
  return b64url(Buffer.concat([iv, cipher.getAuthTag(), body]))
}

/** The successor sealed by sealSuccessor, or null when the blob was not sealed for this token. */
export function openSuccessor (predecessor: string, sealed: string): string | null {
  const raw = Buffer.from(sealed, 'base64url')
  if (raw.length < 29) return null
  try {
    const decipher = createDecipheriv('aes-256-gcm', successorKey(predecessor), raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(12, 28))
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
  } catch {
    return null
  }
}
