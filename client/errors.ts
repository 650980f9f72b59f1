// The one error the client throws: a code to match on, as the server's answers have.
import type { ErrorCode, PlatformResponse } from './types.js'

export class WechatAuthError extends Error {
  /** Match on this: a server code, a `CLIENT_*` code, or `HTTP_<status>` for an answer without one. */
  code: ErrorCode
  /** The HTTP status, 0 when no answer came. */
  statusCode: number
  /** What some codes add: the ban's `until` and `reason`, the device that replaced the session... */
  detail?: Record<string, string>
  /** AUTH_ACCOUNT_BANNED: when the ban ends (ISO 8601); absent for a ban for good. */
  until?: string
  /** 429 and CLIENT_LOGIN_LIMIT: seconds to wait before trying again. */
  retryAfter?: number
  /** WX_SESSION_KEY_STALE: the client logged in again; fetch the encrypted data again, then decrypt. */
  refetch?: boolean

  constructor (code: ErrorCode, message: string, statusCode = 0) {
    super(message)
    this.name = 'WechatAuthError'
    this.code = code
    this.statusCode = statusCode
  }
}

/** A header of an answer, whatever its case (platforms keep the server's spelling). */
export function headerOf (res: PlatformResponse, name: string): string | undefined {
  const header = res.header ?? {}
  for (const key of Object.keys(header)) if (key.toLowerCase() === name) return header[key]
  return undefined
}

/** The error of an answer that is not 2xx: its `code`, or `HTTP_<status>` when the body has none. */
export function errorOf (res: PlatformResponse): WechatAuthError {
  const body = (typeof res.data === 'object' && res.data !== null ? res.data : {}) as { code?: unknown, message?: unknown, detail?: Record<string, string> }
  const code = typeof body.code === 'string' ? body.code as ErrorCode : `HTTP_${res.statusCode}` as const
  const err = new WechatAuthError(code, typeof body.message === 'string' ? body.message : `HTTP ${res.statusCode}`, res.statusCode)
  if (body.detail !== undefined) {
    err.detail = body.detail
    if (body.detail.until !== undefined) err.until = body.detail.until
  }
  const after = Number(headerOf(res, 'retry-after'))
  if (after >= 0) err.retryAfter = after
  return err
}

export const codeOf = (err: unknown): string | undefined => err instanceof WechatAuthError ? err.code : undefined
