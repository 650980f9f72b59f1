// The client's types. Answers and error codes come from the server's TypeBox schemas and error
// constructors (type-only imports: nothing of the server reaches the compiled client).
import type { Static } from '@sinclair/typebox'
import type * as ServerErrors from '../lib/errors.js'
import type { ErrorResponse, LoginBody, MeResponse, PhoneResponse, QrScanned, QrStatus, RouteError, StepUpResponse, TicketResponse } from '../lib/schemas.js'

export type { DecryptBody, LogoutBody, MeResponse, PhoneResponse, TokenPair } from '../lib/schemas.js'
export type StepUpAnswer = Static<typeof StepUpResponse>
export type ErrorAnswer = Static<typeof ErrorResponse>
export type Me = MeResponse
export type Phone = PhoneResponse
/** What a scanned web QR login says about the web page asking (for the confirmation screen). */
export type QrScan = Static<typeof QrScanned>
export type QrState = Static<typeof QrStatus>
export type Ticket = Static<typeof TicketResponse>

type CodeOf<T> = T extends new (...args: never[]) => { code: infer C extends string } ? C : never
/**
 * Every code the gateway answers with: lib/errors.ts's constructors, the codes of lib/schemas.ts's
 * RouteError, and two of Fastify's own that docs/http-api.md lists (no schema of the gateway names them).
 */
export type ServerErrorCode = { [K in keyof typeof ServerErrors]: CodeOf<typeof ServerErrors[K]> }[keyof typeof ServerErrors] | Extract<RouteError, string> |
  'FST_ERR_CTP_EMPTY_JSON_BODY' | 'FST_ERR_ROUTE_MISSING_CONTENT_TYPE'
/** Codes of failures the client itself sees: the platform's request or login failed, or it stopped a loop. */
export type ClientErrorCode = 'CLIENT_NETWORK' | 'CLIENT_WX_LOGIN_FAILED' | 'CLIENT_LOGIN_LIMIT' | 'CLIENT_BAD_RESPONSE' | 'CLIENT_FOREIGN_URL' | 'CLIENT_LOGGED_OUT'
/** What `error.code` may be: a server code, a client code, or `HTTP_<status>` for an answer without one. */
export type ErrorCode = ServerErrorCode | ClientErrorCode | `HTTP_${number}`

/** What the platform's request hands `success`: wx, uni and Taro all answer this shape. */
export interface PlatformResponse {
  statusCode: number
  data: unknown
  header?: Record<string, string | undefined>
}

export interface PlatformRequestOptions {
  url: string
  method: string
  data?: unknown
  header: Record<string, string>
  timeout?: number
  dataType?: 'json'
  success: (res: PlatformResponse) => void
  fail: (err: { errMsg?: string }) => void
}

/** The part of `wx` (or `uni`, or Taro) the client uses: given at creation, never looked up globally. */
export interface Platform {
  request: (opts: PlatformRequestOptions) => unknown
  login: (opts: { timeout: number, success: (res: { code: string }) => void, fail: (err: { errMsg?: string }) => void }) => unknown
  getStorageSync: (key: string) => unknown
  setStorageSync: (key: string, value: unknown) => unknown
  removeStorageSync: (key: string) => unknown
}

/** The tokens kept in storage; times are the device clock's milliseconds when the answer came. */
export interface Session {
  accessToken: string
  refreshToken: string
  openid: string
  unionid?: string
  /** When the access token expires (received + expiresIn). */
  expiresAt: number
  /** When the access token was received. */
  receivedAt: number
  /** When the refresh token expires if unused. */
  refreshExpiresAt: number
}

export interface ClientOptions extends Pick<LoginBody, 'appid' | 'deviceType' | 'deviceName'> {
  platform: Platform
  /** The gateway, e.g. `https://api.example.com`; request() paths are relative to it. */
  baseUrl: string
  /**
   * Other origins request() may send the Bearer token to (`https://files.example.com`: scheme, host and
   * port as written in their URLs); an absolute URL of any other origin is CLIENT_FOREIGN_URL unless `auth: false`.
   */
  origins?: string[]
  /** The gateway's AUTH_PREFIX (default `/auth`). */
  prefix?: string
  /** Storage key of the tokens (default `wechat-auth`). */
  storageKey?: string
  /** Refresh before a request made in this last part of the access token's life (default 0.2). */
  refreshAhead?: number
  /** Automatic logins allowed in any minute, cold start included (default 3); then CLIENT_LOGIN_LIMIT. */
  maxLoginsPerMinute?: number
  /** Retries of a 503 or 504, with jitter (default 2). */
  retries?: number
  /** The longest `retry-after` a 429 is waited out, in seconds (default 10); a longer one is thrown. */
  maxRetryAfter?: number
  /** Tries of a refresh whose answer was lost (default 3), well within REFRESH_GRACE_SECONDS. */
  refreshTries?: number
  /** The platform request's timeout for refreshes, ms (default 5000): a lost answer is retried in the grace window. */
  refreshTimeout?: number
  /** Codes that end the session and log in again; drop AUTH_SESSION_REPLACED to let the user choose. */
  reloginOn?: ServerErrorCode[]
  /** The clock and the timer; tests pass fakes. */
  now?: () => number
  sleep?: (ms: number) => Promise<void>
  random?: () => number
}

export interface RequestOptions {
  /** A path under baseUrl (`/api/orders`), or an absolute URL: of baseUrl's origin or options.origins to carry the token. */
  url: string
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS'
  data?: unknown
  header?: Record<string, string>
  timeout?: number
  /** false: send no token (default true). */
  auth?: boolean
}

export interface Response<T> {
  statusCode: number
  data: T
  header: Record<string, string | undefined>
}

/** Why a session ended: the code that ended it, or `logout` when the app asked. */
export interface LoggedOut {
  reason: ErrorCode | 'logout'
  detail?: Record<string, string>
}

export interface Events {
  loggedIn: Session
  loggedOut: LoggedOut
  refreshed: Session
}
