// The one error the client throws: a code to match on, as the server's answers have.
import type { ErrorCode, PlatformResponse } from './types.js'

// The fields are `declare`d: set where they apply, with no code for them in the bundle.
export class WechatAuthError extends Error {
  /** Match on this: a server code, a `CLIENT_*` code, or `HTTP_<status>` for an answer without one. */
  declare code: ErrorCode
  /** The HTTP status, 0 when no answer came. */
  declare statusCode: number
  /** What some codes add: the ban's `until` and `reason`, the device that replaced the session... */
  declare detail?: Record<string, string>
  /** AUTH_ACCOUNT_BANNED: when the ban ends (ISO 8601); absent for a ban for good. */
  declare until?: string
  /** 429 and CLIENT_LOGIN_LIMIT: seconds to wait before trying again. */
  declare retryAfter?: number
  /** WX_SESSION_KEY_STALE: the client logged in again; fetch the encrypted data again, then decrypt. */
  declare refetch?: boolean

  constructor (code: ErrorCode, message: string, statusCode = 0) {
    super(message)
    this.name = 'WechatAuthError'
    this.code = code
    this.statusCode = statusCode
  }
}

/** A header, whatever its case (platforms keep the server's spelling; apps write their own). */
export function headerOf (header: Record<string, string | undefined> = {}, name: string): string | undefined {
  for (const key of Object.keys(header)) if (key.toLowerCase() === name) return header[key]
  return undefined
}

/** The error of an answer that is not 2xx: its `code`, or `HTTP_<status>` when the body has none. */
export function errorOf (res: PlatformResponse): WechatAuthError {
  const body = (typeof res.data === 'object' && res.data !== null ? res.data : {}) as { code?: unknown, message?: unknown, detail?: Record<string, string> | null }
  const code = typeof body.code === 'string' ? body.code as ErrorCode : `HTTP_${res.statusCode}` as const
  const err = new WechatAuthError(code, typeof body.message === 'string' ? body.message : code, res.statusCode)
  const detail = body.detail
  if (typeof detail === 'object' && detail !== null) {
    err.detail = detail
    if (typeof detail.until === 'string') err.until = detail.until
  }
  const after = Number(headerOf(res.header, 'retry-after'))
  if (after >= 0) err.retryAfter = after
  return err
}

export const codeOf = (err: unknown): string | undefined => err instanceof WechatAuthError ? err.code : undefined
