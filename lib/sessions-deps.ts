// What the login, refresh and logout flows are built from, and what they share.
import type { AccessTokens } from './access-tokens.js'
import type { ResolvedConfig } from './config.js'
import type { Audit, RequestContext } from './audit.js'
import type { Logger } from './logger.js'
import type { TokenPair } from './schemas.js'
import type { AccessStore, LoginCodeStore, SessionsStore, TokenSubject } from './store/types.js'
import type { Code2SessionResult } from './wechat-client.js'
import type { OAuthUserInfo } from './wechat-oauth.js'

/** The user as an official account's web authorization (H5 login, snsapi_userinfo) describes them. */
export type H5UserInfo = OAuthUserInfo

/**
 * Who logged in, as the host's resolveUser is told. `openid` is the user's in the app they came
 * through: the mini program's, or with `source: 'h5'` the official account's (another value for the
 * same person); `unionid` is the same in both when they are bound to one open-platform account, the
 * one safe way to link them. `appid` is the mini program whose session this becomes.
 */
export interface WeChatIdentity {
  openid: string
  unionid?: string
  appid: string
  /** Where the login came from: `mp` (wx.login()) or `h5` (an official account's web authorization). Always set by the gateway. */
  source?: 'mp' | 'h5'
  /** With `source: 'h5'`: the official account's appid. */
  officialAccount?: string
  /** With `source: 'h5'` and scope snsapi_userinfo: the nickname and avatar WeChat gave. */
  userInfo?: H5UserInfo
}

export type SessionRuleKey = 'DEVICE_TYPES' | 'DEVICE_TYPE_DEFAULT' | 'EXCLUSIVE_DEVICE_TYPES' | 'EXCLUSIVE_MODE' | 'MAX_SESSIONS_PER_USER' | 'ACCESS_TOKEN_TTL' | 'STEP_UP_TTL'

/** What a login says about its device; the type defaults to DEVICE_TYPE_DEFAULT. */
export interface LoginDevice {
  deviceType?: string
  deviceName?: string
  ip?: string
  userAgent?: string
  /** The HTTP request the login came in, for its audit events (never stored with the session). */
  request?: RequestContext
}

/**
 * The host app's hook: find or create its own user; `userId` becomes the token's `sub`. Roles and
 * permissions, when returned, replace the user's stored ones (shared by every instance, read on
 * every request); left out, the stored ones stay.
 */
export type ResolveUser = (identity: WeChatIdentity) => Promise<{ userId: string, claims?: Record<string, unknown>, roles?: string[], permissions?: string[] }>

export interface SessionsDeps {
  store: LoginCodeStore & Omit<SessionsStore, 'checkAccess' | 'blacklist'> & AccessStore
  /** WeChat, as much of it as logging in needs (fastify.wechat has this shape). */
  wechat: {
    readonly appids: readonly string[]
    appOf: (appid?: string) => string
    code2Session: (code: string, appid?: string) => Promise<Code2SessionResult>
  }
  tokens: Pick<AccessTokens, 'sign'>
  config: Pick<ResolvedConfig, 'jwtSecret' | 'JWT_SECRET_PREVIOUS' | 'REFRESH_TOKEN_TTL' | 'SESSION_MAX_AGE' | 'REFRESH_GRACE_SECONDS'> &
    /** Session control and cookie mode; the configuration's defaults when left out. */
    Partial<Pick<ResolvedConfig, SessionRuleKey | 'refreshCookieTypes'>>
  /** The openid becomes the user id when none is given. */
  resolveUser?: ResolveUser
  /** Where audit events go (lib/audit.ts); none by default. */
  audit?: Audit
  log: Pick<Logger, 'warn'>
}

/** A new session's first token pair, and its device type (which decides where a web client's refresh token goes). */
export type OpenedPair = TokenPair & { deviceType: string }

/**
 * Builds a token pair for a session: a fresh access token and the given refresh token; a refresh
 * gives the generation its rotation issues the tokens at (the access token's `sgen`).
 */
export type PairOf = (appid: string, session: TokenSubject, sid: string, refreshToken: string, refreshTtlSec: number, generation?: number) => TokenPair
