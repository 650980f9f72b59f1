// WeChat errcodes (../shared/wechat-api.md) to the gateway's coded errors.
import {
  WxAccessTokenRejectedError, WxBadResponseError, WxCodeInvalidError, WxCodeUsedError, WxCredentialsRejectedError,
  WxRateLimitedError, WxUnavailableError, WxUserBlockedError
} from './errors.js'

/** errcodes worth one retry inside the deadline. */
export const TRANSIENT_ERRCODES = new Set([-1])

/** errcodes that mean the gateway itself is misconfigured: logged at error level. */
export const CREDENTIAL_ERRCODES = new Set([40013, 40125, 40002, 41002, 41004])

export function errorForErrcode (errcode: number): Error {
  switch (errcode) {
    case 40029: return new WxCodeInvalidError()
    case 40163: return new WxCodeUsedError()
    case 40226: return new WxUserBlockedError()
    case 45011: return new WxRateLimitedError()
    case -1: return new WxUnavailableError()
    // The access_token is stale or invalid: the token manager refreshes once and retries once.
    case 40001: case 40014: case 42001: return new WxAccessTokenRejectedError()
    default:
      return CREDENTIAL_ERRCODES.has(errcode)
        ? new WxCredentialsRejectedError(String(errcode))
        : new WxBadResponseError(`errcode ${errcode}`)
  }
}
