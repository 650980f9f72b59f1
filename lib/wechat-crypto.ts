// WeChat's client-side data crypto (../shared/wechat-api.md), as pure functions: no Fastify, no I/O.
import { createDecipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { WxDecryptFailedError, WxSessionKeyStaleError } from './errors.js'

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Strict base64, after repairing `+` that a form or query string turned into spaces. */
function base64 (value: unknown, name: string): Buffer {
  if (typeof value !== 'string') throw new WxDecryptFailedError(`${name} must be a string`)
  const repaired = value.replace(/ /g, '+')
  if (repaired === '' || !BASE64.test(repaired)) throw new WxDecryptFailedError(`${name} is not base64`)
  return Buffer.from(repaired, 'base64')
}

// WeChat's data is a few levels deep (WeRun's steps: 3). JSON.parse takes any depth, but the answer's
// serialiser recurses: thousands of levels overflowed its stack (a 500) within the body limit.
const MAX_DEPTH = 32

/** Whether `value` holds objects or arrays nested more than `max` levels, without recursing. */
function deeperThan (value: object, max: number): boolean {
  let level: unknown[] = [value]
  for (let depth = 1; level.length > 0; depth++) {
    if (depth > max) return true
    level = level.flatMap((v) => Object.values(v as object)).filter((v) => v !== null && typeof v === 'object')
  }
  return false
}

export interface DecryptInput {
  sessionKey: string
  encryptedData: string
  iv: string
  /** The mini program's appid: the plaintext's watermark must carry it. */
  appid: string
}

/**
 * Decrypts data a mini program received from WeChat (wx.getUserInfo, wx.getWeRunData, ...):
 * AES-128-CBC, PKCS#7, key = base64-decoded session_key. Throws only two coded errors:
 * WX_DECRYPT_FAILED (400) for input that cannot be right under any key (base64, lengths,
 * watermark of another appid) and WX_SESSION_KEY_STALE (401) for well-formed data that does not
 * decrypt under this session_key (the client logged in again since, or fetched the data before).
 */
export function decryptUserData (input: DecryptInput): Record<string, unknown> {
  const key = base64(input?.sessionKey, 'sessionKey')
  const iv = base64(input?.iv, 'iv')
  const data = base64(input?.encryptedData, 'encryptedData')
  if (key.length !== 16) throw new WxDecryptFailedError('sessionKey must decode to 16 bytes')
  if (iv.length !== 16) throw new WxDecryptFailedError('iv must decode to 16 bytes')
  if (data.length === 0 || data.length % 16 !== 0) throw new WxDecryptFailedError('encryptedData must decode to a multiple of 16 bytes')
  let plain: unknown
  try {
    const decipher = createDecipheriv('aes-128-cbc', key, iv)
    plain = JSON.parse(Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8'))
  } catch {
    // Bad padding or garbage out: the data was made with another key.
    throw new WxSessionKeyStaleError()
  }
  if (plain === null || typeof plain !== 'object' || Array.isArray(plain)) throw new WxSessionKeyStaleError()
  if (deeperThan(plain, MAX_DEPTH)) throw new WxDecryptFailedError(`the data is nested deeper than ${MAX_DEPTH} levels`)
  const watermark = (plain as { watermark?: { appid?: unknown } }).watermark
  if (watermark?.appid !== input.appid) throw new WxDecryptFailedError('the watermark is not this mini program\'s')
  return plain as Record<string, unknown>
}

export interface SignatureInput {
  rawData: string
  sessionKey: string
  signature: string
}

/** Checks wx.getUserInfo's signature: sha1(rawData + session_key) in hex, compared in constant time. */
export function verifyUserSignature (input: SignatureInput): boolean {
  if (typeof input?.rawData !== 'string' || typeof input.sessionKey !== 'string' || typeof input.signature !== 'string') return false
  if (!/^[0-9a-fA-F]{40}$/.test(input.signature)) return false
  const expected = createHash('sha1').update(input.rawData + input.sessionKey, 'utf8').digest()
  return timingSafeEqual(expected, Buffer.from(input.signature, 'hex'))
}

/**
 * The signature WeChat's server-side checks want (wxa/checksession, wxa/resetusersessionkey):
 * lowercase hex HMAC-SHA256 of `payload` keyed with the session_key string's ASCII bytes
 * (not its base64-decoded bytes, as two SDKs did).
 */
export function sessionKeySignature (sessionKey: string, payload = ''): string {
  return createHmac('sha256', Buffer.from(sessionKey, 'utf8')).update(payload, 'utf8').digest('hex')
}
