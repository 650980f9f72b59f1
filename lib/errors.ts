// Every error the gateway answers with, by stable code. Clients and tests match on `code`.
import { createError } from '@fastify/error'
import type { SessionEnd } from './store/types.js'

/**
 * An answer's error: an expected outcome with a stable code, not a bug, so made without a stack. The
 * error handler never logs a coded error's stack, and capturing one cost every refused request (a
 * 401 of forward auth, a 429) some 12 µs on a slow machine (BENCHMARKS.md, "Refusals without a
 * stack"). An error without a code (a bug) keeps its stack; so does ConfigError (boot only).
 */
const coded = <C extends string, SC extends number>(code: C, message: string, statusCode: SC) =>
  createError(code, message, statusCode, Error, false)

export const WxCodeInvalidError = coded('WX_CODE_INVALID', 'The login code is invalid or expired; call wx.login() again', 401)
export const WxCodeUsedError = coded('WX_CODE_USED', 'The login code has already been used; call wx.login() again', 401)
export const WxUserBlockedError = coded('WX_USER_BLOCKED', 'WeChat blocked this login as high-risk', 403)
export const WxRateLimitedError = coded('WX_RATE_LIMITED', 'WeChat rate limit reached for this user; try again later', 429)
export const WxUnavailableError = coded('WX_UNAVAILABLE', 'WeChat is unavailable; try again later', 503)
export const WxTimeoutError = coded('WX_TIMEOUT', 'WeChat did not answer in time', 504)
export const WxBadResponseError = coded('WX_BAD_RESPONSE', 'WeChat returned an unexpected response (%s)', 502)
export const WxCredentialsRejectedError = coded('WX_CREDENTIALS_REJECTED', 'WeChat rejected the gateway credentials (errcode %s)', 502)

export const AuthTokenMissingError = coded('AUTH_TOKEN_MISSING', 'An Authorization: Bearer <access token> header is required', 401)
export const AuthTokenInvalidError = coded('AUTH_TOKEN_INVALID', 'The access token is invalid', 401)
export const AuthTokenExpiredError = coded('AUTH_TOKEN_EXPIRED', 'The access token has expired; refresh it', 401)
export const AuthTokenRevokedError = coded('AUTH_TOKEN_REVOKED', 'The access token has been revoked; log in again', 401)
export const AuthRefreshInvalidError = coded('AUTH_REFRESH_INVALID', 'The refresh token is invalid, expired or revoked; log in again', 401)
export const AuthRefreshReusedError = coded('AUTH_REFRESH_REUSED', 'The refresh token was already used; the session has been revoked, log in again', 401)

export const RateLimitedError = coded('RATE_LIMITED', 'Too many requests; retry in %s', 429)
export const StoreUnavailableError = coded('STORE_UNAVAILABLE', 'The session store is unavailable; try again later', 503)

export const RouteNotFoundError = coded('ROUTE_NOT_FOUND', 'No route %s %s', 404)
export const UpgradeRefusedError = coded('UPGRADE_REFUSED', 'This server does not switch protocols (Upgrade); send a plain HTTP/1.1 request', 400)

export const ConfigError = createError('CONFIG_INVALID', 'Invalid configuration: %s')

export const WxDecryptFailedError = coded('WX_DECRYPT_FAILED', 'The encrypted data is malformed: %s', 400)
export const WxSessionKeyStaleError = coded('WX_SESSION_KEY_STALE', 'The data was not encrypted with this session\'s key (the client has a newer one); log in again', 401)

export const WxAppUnknownError = coded('WX_APP_UNKNOWN', '%s', 400)
export const WxSignatureInvalidError = coded('WX_SIGNATURE_INVALID', 'The signature does not match rawData under this session\'s key', 400)
export const WxPhoneCodeInvalidError = coded('WX_PHONE_CODE_INVALID', 'The phone-number code is invalid, expired or already used; ask the user again', 400)
export const WxAccessTokenRejectedError = coded('WX_ACCESS_TOKEN_REJECTED', 'WeChat rejected the gateway\'s access_token even after a refresh', 502)
export const AuthWrongAppError = coded('AUTH_WRONG_APP', 'This access token belongs to another mini program', 403)
export const AuthSessionReplacedError = coded('AUTH_SESSION_REPLACED', 'This session was ended by a login on another device (%s); log in again', 401)
export const AuthDeviceInUseError = coded('AUTH_DEVICE_IN_USE', 'This account is already signed in on a device of this type (%s); sign out there first', 403)
export const AuthDeviceTypeUnknownError = coded('AUTH_DEVICE_TYPE_UNKNOWN', 'Unknown device type; use one of %s', 400)
export const AuthSessionNotFoundError = coded('AUTH_SESSION_NOT_FOUND', 'No such session of yours', 404)
export const AuthSessionKickedError = coded('AUTH_SESSION_KICKED', 'This session was ended by the service (%s); log in again', 401)
export const AuthAccountBannedError = coded('AUTH_ACCOUNT_BANNED', 'This account is banned (%s)', 403)
export const AuthForbiddenError = coded('AUTH_FORBIDDEN', 'Not allowed: %s', 403)
export const AuthStepUpRequiredError = coded('AUTH_STEP_UP_REQUIRED', 'This needs a recent step-up: call wx.login() and send the code to the step-up route', 401)
export const AuthStepUpMismatchError = coded('AUTH_STEP_UP_MISMATCH', 'The login code belongs to another WeChat user than this session', 403)
export const AuthStepUpUnavailableError = coded('AUTH_STEP_UP_UNAVAILABLE', 'This session cannot step up: it was opened by H5 login, where there is no wx.login() code; step up in the mini program', 403)
export const UserNotFoundError = coded('USER_NOT_FOUND', 'No user is known by this openid (it has not logged in lately); name the user by its id', 404)
export const ServiceBansFullError = coded('SERVICE_BANS_FULL', 'This user already has %s service bans; lift one first', 409)
export const AdminTokenInvalidError = coded('ADMIN_TOKEN_INVALID', 'The admin API needs an Authorization: Bearer <ADMIN_TOKEN> header with the admin token', 401)
/**
 * An argument of the host API (kick, ban, unban, setAccess, userState) outside its rule: still a
 * TypeError for a host that calls it, and answered as the 400 FST_ERR_VALIDATION it is when a route
 * passes a request's value on (the admin API's schemas and the host API's checks can differ at an
 * edge: a clock tick, characters counted two ways), never a 500. The message names the argument and
 * the rule, never the value.
 */
export const ArgumentError = createError('FST_ERR_VALIDATION', '%s', 400, TypeError, false)

/**
 * The error a session's tokens get when it did not end by logout or expiry: AUTH_SESSION_REPLACED
 * (which kind of device took its place, when, why), AUTH_SESSION_KICKED (the reason code, when) or
 * AUTH_ACCOUNT_BANNED (the reason code, until when unless for good).
 */
export function sessionEnded (end: SessionEnd): Error {
  const at = (ms: number): string => new Date(ms).toISOString()
  switch (end.reason) {
    case 'kicked':
      return Object.assign(new AuthSessionKickedError(end.by), { detail: { reason: end.by, endedAt: at(end.endedAt) } })
    case 'banned':
      return Object.assign(new AuthAccountBannedError(end.by), { detail: { reason: end.by, ...(end.endedAt > 0 ? { until: at(end.endedAt) } : {}) } })
    default: {
      const cause = end.reason === 'limit' ? 'session-limit' : 'exclusive-device'
      return Object.assign(new AuthSessionReplacedError(end.by), { detail: { deviceType: end.by, endedAt: at(end.endedAt), cause } })
    }
  }
}

/** AUTH_ACCOUNT_BANNED for one service: the reason code, the service, until when unless for good. */
export const serviceBanned = (ban: { service: string, reason: string, until: number | null }): Error =>
  Object.assign(new AuthAccountBannedError(ban.reason), {
    detail: { reason: ban.reason, service: ban.service, ...(ban.until !== null ? { until: new Date(ban.until).toISOString() } : {}) }
  })

/** AUTH_DEVICE_IN_USE, naming the device type. */
export const deviceInUse = (deviceType: string): Error =>
  Object.assign(new AuthDeviceInUseError(deviceType), { detail: { deviceType } })

export const TicketInvalidError = coded('AUTH_TICKET_INVALID', 'The ticket is invalid, expired or already used (or its session has ended)', 401)
export const TicketAudienceMismatchError = coded('AUTH_TICKET_AUDIENCE_MISMATCH', 'This ticket was issued for another device type (%s); it is spent', 403)
export const AuthQrNotFoundError = coded('AUTH_QR_NOT_FOUND', 'No such QR login (it ended a while ago, or never existed); make a new one', 404)
export const AuthQrExpiredError = coded('AUTH_QR_EXPIRED', 'This QR login has expired; make a new one', 410)
export const AuthQrOtherUserError = coded('AUTH_QR_OTHER_USER', 'Another user scanned this code first; only they may confirm or cancel it', 403)
export const AuthQrStateError = coded('AUTH_QR_STATE', 'This QR login is %s: the step is not allowed now', 409)
export const AuthQrSecretInvalidError = coded('AUTH_QR_SECRET_INVALID', 'The secret is not this QR login\'s: only the browser that made it may collect the tokens', 403)
export const AuthQrCollectedError = coded('AUTH_QR_COLLECTED', 'The tokens of this QR login were already collected', 409)
export const AuthQrSessionEndedError = coded('AUTH_QR_SESSION_ENDED', 'The mini-program session that confirmed this login has ended; scan a new code', 409)
export const WxQrPageRejectedError = coded('WX_QR_PAGE_REJECTED', 'WeChat refused to make a code for QR_PAGE (errcode %s): the page must exist in the released version, or set QR_ENV_VERSION', 502)
export const MetricsUnavailableError = coded('METRICS_UNAVAILABLE', 'The metrics could not be collected (a worker did not answer in time); the next scrape tries again', 503)

// H5 login (an official account's web authorization) and cookie mode (issue 18).
export const AuthH5StateMissingError = coded('AUTH_H5_STATE_MISSING', 'No state: send the state WeChat added to the page\'s address with the code', 400)
export const AuthH5StateInvalidError = coded('AUTH_H5_STATE_INVALID', 'The state is not one this gateway made; start the H5 login again', 400)
export const AuthH5StateExpiredError = coded('AUTH_H5_STATE_EXPIRED', 'The H5 login took longer than H5_STATE_TTL; start it again', 410)
export const AuthH5StateOtherBrowserError = coded('AUTH_H5_STATE_OTHER_BROWSER', 'The state was made for another browser (its cookie is missing or another login\'s); start the H5 login again in this one', 403)
export const AuthH5StateUsedError = coded('AUTH_H5_STATE_USED', 'The state was already used; start the H5 login again', 409)
export const AuthH5CodeMissingError = coded('AUTH_H5_CODE_MISSING', 'No authorization code: the user declined, or the page was not opened by WeChat\'s redirect; start the H5 login again', 400)
export const AuthH5ReturnToRefusedError = coded('AUTH_H5_RETURN_TO_REFUSED', 'returnTo is not one of the pages H5_RETURN_URLS allows', 400)
export const WxOauthCodeInvalidError = coded('WX_OAUTH_CODE_INVALID', 'WeChat says the authorization code is invalid or expired; start the H5 login again', 401)
export const WxOauthCodeUsedError = coded('WX_OAUTH_CODE_USED', 'The authorization code has already been used; start the H5 login again', 401)
export const AuthRefreshMissingError = coded('AUTH_REFRESH_MISSING', 'No refresh token: send it in the body, or (cookie mode) from the browser that holds the refresh cookie', 401)
export const AuthCsrfRejectedError = coded('AUTH_CSRF_REJECTED', 'A refresh from the cookie needs the X-WeChat-Auth-CSRF: 1 header and a same-site request', 403)

// Cookie mode: a session whose refresh token is a cookie hands its login on to no other device.
export const AuthHandoffRefusedError = coded('AUTH_HANDOFF_REFUSED', 'A session of device type %s keeps its refresh token in a cookie (REFRESH_COOKIE): it cannot hand its login to another device (ticket, QR login); hand it over from the mini program', 403)
