// Identifiers: random ids (sessions, access tokens, nonces), digests that index secrets, and the
// per-user tag every Redis key of a user carries. No I/O, no Fastify.
import { hash, randomBytes } from 'node:crypto'

export const b64url = (buf: Buffer): string => buf.toString('base64url')

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
// a token this gateway signed ever get here), by appid then sub: a key joined from both was a
// new string to hash at every call (1.5 % of an authenticated request's samples, 0.3 % now).
const TAG_MEMO_SIZE = 10_000
const tagMemo = new Map<string, Map<string, string>>()
let tagMemoSize = 0

/**
 * The Redis Cluster hash tag of one user of one mini program. Every key of that user carries it,
 * so a user's keys live in one slot and can change together atomically.
 */
export function userTag (appid: string, sub: string): string {
  let ofApp = tagMemo.get(appid)
  let tag = ofApp?.get(sub)
  if (tag === undefined) {
    if (tagMemoSize >= TAG_MEMO_SIZE) {
      tagMemo.clear()
      tagMemoSize = 0
      ofApp = undefined
    }
    if (ofApp === undefined) tagMemo.set(appid, ofApp = new Map())
    tag = digest(`${appid}\u0000${sub}`).slice(0, TAG_CHARS)
    ofApp.set(sub, tag)
    tagMemoSize++
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
const NONCE_BYTES = 12

export const newSessionId = (): string => randomId(SID_BYTES)
export const newJti = (): string => randomId(12)
/** The randomness a rotation draws; kept in the session so a retry derives the same successor. */
export const newNonce = (): string => randomId(NONCE_BYTES)
