// Logging in: a wx.login() code, claimed once in the store, exchanged with WeChat, then a session
// for the user the host's resolveUser names, and its first token pair. H5 login (lib/h5-login.ts)
// opens its sessions the same way (createIdentityLogin).
import { Value } from '@sinclair/typebox/value'
import { AccessInput, USER_ID_PATTERN } from './access-schemas.js'
import { outcomeOf, type SessionVia } from './audit.js'
import type { CodeExchange } from './code-exchange.js'
import type { Gate } from './rate-gate.js'
import { ConfigSchema } from './schemas.js'
import type { SessionOpener } from './session-opener.js'
import type { LoginDevice, OpenedPair, ResolveUser, SessionsDeps, WeChatIdentity } from './sessions-deps.js'
import type { DeviceInfo, NewSession } from './store/types.js'

// Claims the gateway sets itself; resolveUser may not override them.
// roles, permissions, steppedUpAt and serviceBans are the store's, read on every request.
// __proto__, constructor and toJSON would change the object the claims are copied into, or its JSON.
const RESERVED_CLAIMS = new Set(['sub', 'openid', 'unionid', 'sid', 'sgen', 'jti', 'iat', 'exp', 'nbf', 'iss', 'aud', 'roles', 'permissions', 'steppedUpAt', 'serviceBans',
  '__proto__', 'constructor', 'toJSON'])
// Half of a UTF-16 pair alone: no UTF-8 encodes it (a header, a log line, JSON elsewhere would break).
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
// A userId becomes `sub` and is stored in a packed record: the schema's rule (printable, 1 to 256
// characters), and at most 256 UTF-16 units.
const USER_ID = new RegExp(USER_ID_PATTERN)
const isUserId = (id: unknown): id is string => typeof id === 'string' && id.length <= 256 && USER_ID.test(id)
// resolveUser's claims, as JSON in UTF-8: with the longest sub and JWT_ISSUER, an ES256 token that a
// refresh adds its generation to stays under the 4,096 characters verification takes (access-tokens.ts).
export const MAX_CLAIMS_BYTES = 1024

/** Session control from the configuration, with the schema's defaults for what is left out. */
export function sessionRules (config: SessionsDeps['config']) {
  const d = ConfigSchema.properties
  const list = (s: string | undefined): string[] => (s ?? '').split(',').filter((x) => x !== '')
  return {
    types: list(config.DEVICE_TYPES ?? d.DEVICE_TYPES.default),
    defaultType: config.DEVICE_TYPE_DEFAULT ?? d.DEVICE_TYPE_DEFAULT.default,
    exclusiveTypes: new Set(list(config.EXCLUSIVE_DEVICE_TYPES)),
    mode: config.EXCLUSIVE_MODE ?? d.EXCLUSIVE_MODE.default,
    maxSessions: config.MAX_SESSIONS_PER_USER ?? d.MAX_SESSIONS_PER_USER.default,
    accessTtlSec: config.ACCESS_TOKEN_TTL ?? d.ACCESS_TOKEN_TTL.default,
    stepUpTtlSec: config.STEP_UP_TTL ?? d.STEP_UP_TTL.default
  }
}

/** The roles and permissions resolveUser returned, checked; undefined when it returned neither. */
function accessOf (user: { roles?: unknown, permissions?: unknown }): AccessInput | undefined {
  if (user.roles === undefined && user.permissions === undefined) return undefined
  const access = { roles: user.roles ?? [], permissions: user.permissions ?? [] }
  if (!Value.Check(AccessInput, access)) throw new Error('resolveUser returned invalid roles or permissions (see AccessInput)')
  return access
}

/**
 * Opens a session for a user WeChat has just identified (a wx.login() code, an official account's
 * authorization): the host's resolveUser names the user, the session keeps the identity and its
 * claims. `opening.started` is set once the session's own operation begins (it is audited there).
 */
export function createIdentityLogin ({ store, config, resolveUser: hostResolver }: Pick<SessionsDeps, 'store' | 'config' | 'resolveUser'>, resolveUser: ResolveUser, opener: SessionOpener) {
  return async function openFor (identity: WeChatIdentity, sessionKey: string, device: LoginDevice & { deviceType: string }, via: SessionVia, opening: { started: boolean }): Promise<OpenedPair> {
    const { appid } = identity
    const user = await resolveUser(identity)
    if (!isUserId(user?.userId)) throw new Error('resolveUser must return a userId of 1 to 256 printable characters')
    const reserved = user.claims === undefined ? [] : Object.keys(user.claims).filter((k) => RESERVED_CLAIMS.has(k))
    if (reserved.length > 0) throw new Error(`resolveUser returned reserved claim(s): ${reserved.join(', ')}`)
    const claimsBytes = user.claims === undefined ? 0 : Buffer.byteLength(JSON.stringify(user.claims))
    if (claimsBytes > MAX_CLAIMS_BYTES) throw new Error(`resolveUser returned claims of ${claimsBytes} bytes of JSON: at most ${MAX_CLAIMS_BYTES}, or the access tokens would be refused`)
    const session: NewSession & { device: DeviceInfo } = { sub: user.userId, openid: identity.openid, sessionKey, device }
    if (identity.unionid !== undefined) session.unionid = identity.unionid
    if (user.claims !== undefined && Object.keys(user.claims).length > 0) session.claims = user.claims
    const access = accessOf(user)
    if (access !== undefined) session.access = access
    // Operators may name the user by openid: with a host's resolveUser, remember whom it maps to now,
    // the openid itself included, so that an old mapping never names a user it no longer is (nothing
    // to remember by default: the openid is the user id).
    opening.started = true
    return await opener.openSession(appid, session,
      hostResolver === undefined ? undefined : store.rememberOpenid(appid, identity.openid, user.userId, config.SESSION_MAX_AGE), via)
  }
}

export function createLogin ({ wechat, config, audit }: SessionsDeps, openFor: ReturnType<typeof createIdentityLogin>, exchange: CodeExchange, opener: SessionOpener) {
  const rules = sessionRules(config)

  /**
   * Logs in with a wx.login() code. `appid` may be omitted when one mini program is served. `gate`,
   * the request's rate limit, is waited for with the code's claim (lib/code-exchange.ts).
   */
  async function login (code: string, requestedAppid?: string, device: LoginDevice = {}, gate?: Gate): Promise<OpenedPair> {
    // A login that gets as far as opening a session is audited there (session.open); one refused
    // before (the code, WeChat, the device type) is audited here. Its appid is the mini program the
    // gateway serves, once known: never the client's string, which may be anything (a code sent in
    // the wrong field); a refused one (WX_APP_UNKNOWN) is left out.
    const opening: { started: boolean, appid?: string } = { started: false }
    try {
      return await loginWith(code, requestedAppid, device, opening, gate)
    } catch (err) {
      if (!opening.started) audit?.({ event: 'login', outcome: outcomeOf(err), ...(opening.appid !== undefined ? { appid: opening.appid } : {}) }, device.request)
      throw err
    }
  }

  async function loginWith (code: string, requestedAppid: string | undefined, device: LoginDevice, opening: { started: boolean, appid?: string }, gate?: Gate): Promise<OpenedPair> {
    const appid = wechat.appOf(requestedAppid)
    opening.appid = appid
    const deviceType = device.deviceType ?? rules.defaultType
    opener.checkDeviceType(deviceType)
    const identity = await exchange(appid, code, gate) // from here on the code stays claimed: WeChat accepted it
    const who: WeChatIdentity = { openid: identity.openid, appid, source: 'mp' }
    if (identity.unionid !== undefined) who.unionid = identity.unionid
    return await openFor(who, identity.sessionKey, { ...device, deviceType }, 'login', opening)
  }

  return login
}
