// Logging in: a wx.login() code, claimed once in the store, exchanged with WeChat, then a session
// for the user the host's resolveUser names, and its first token pair.
import { AuthDeviceTypeUnknownError, WxCodeUsedError, deviceInUse, sessionEnded } from './errors.js'
import { digest, newSessionId, userTag, type SessionRef } from './ids.js'
import type { RefreshTokens } from './refresh-tokens.js'
import { ConfigSchema, type TokenPair } from './schemas.js'
import type { LoginDevice, PairOf, ResolveUser, SessionsDeps } from './sessions-deps.js'
import type { NewSession } from './store/types.js'
import type { Code2SessionResult } from './wechat-client.js'

// Claims the gateway sets itself; resolveUser may not override them.
const RESERVED_CLAIMS = new Set(['sub', 'openid', 'unionid', 'sid', 'jti', 'iat', 'exp', 'nbf', 'iss', 'aud'])
// A code is valid at WeChat for 5 minutes; remember accepted ones for longer than that.
export const USED_CODE_TTL_MS = 10 * 60 * 1000
// A userId becomes `sub` and is stored in a packed record: printable, bounded.
// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const CONTROL_CHAR = /[\u0000-\u001f\u007f]/
const isUserId = (id: unknown): id is string =>
  typeof id === 'string' && id.length > 0 && id.length <= 256 && !CONTROL_CHAR.test(id)

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
    accessTtlSec: config.ACCESS_TOKEN_TTL ?? d.ACCESS_TOKEN_TTL.default
  }
}

export function createLogin ({ store, wechat, config }: SessionsDeps, resolveUser: ResolveUser, refreshTokenOf: RefreshTokens, pair: PairOf) {
  /**
   * Exchanges a code with WeChat. A code is claimed in the store before WeChat is called, so a
   * replay (or a concurrent duplicate) never reaches WeChat. The claim is made for as long as an
   * accepted code is remembered, so a successful exchange writes nothing more (one store command
   * less per login); a gateway that dies mid-exchange leaves its code claimed, and the client calls
   * wx.login() again, as after any failed login.
   */
  async function exchange (appid: string, code: string): Promise<Code2SessionResult> {
    const codeId = digest(`${appid}\u0000${code}`)
    const claim = await store.claimCode(codeId, USED_CODE_TTL_MS)
    if (claim !== 'claimed') throw new WxCodeUsedError()
    try {
      return await wechat.code2Session(code, appid)
    } catch (err) {
      // Forget the claim so a code whose exchange failed transiently can be tried again;
      // remember it when WeChat itself says it is used.
      await store.settleCode(codeId, err instanceof WxCodeUsedError, USED_CODE_TTL_MS).catch(() => {})
      throw err
    }
  }

  const rules = sessionRules(config)

  /** Logs in with a wx.login() code. `appid` may be omitted when one mini program is served. */
  async function login (code: string, requestedAppid?: string, device: LoginDevice = {}): Promise<TokenPair> {
    const appid = wechat.appOf(requestedAppid)
    const deviceType = device.deviceType ?? rules.defaultType
    if (!rules.types.includes(deviceType)) throw new AuthDeviceTypeUnknownError(rules.types.join(', '))
    const identity = await exchange(appid, code) // from here on the code stays claimed: WeChat accepted it
    const user = await resolveUser({ ...identity.unionid !== undefined ? { unionid: identity.unionid } : {}, openid: identity.openid, appid })
    if (!isUserId(user?.userId)) throw new Error('resolveUser must return a userId of 1 to 256 printable characters')
    const reserved = user.claims === undefined ? [] : Object.keys(user.claims).filter((k) => RESERVED_CLAIMS.has(k))
    if (reserved.length > 0) throw new Error(`resolveUser returned reserved claim(s): ${reserved.join(', ')}`)
    const ref: SessionRef = { tag: userTag(appid, user.userId), sid: newSessionId() }
    const session: NewSession = { sub: user.userId, openid: identity.openid, sessionKey: identity.sessionKey, device: { ...device, deviceType } }
    if (identity.unionid !== undefined) session.unionid = identity.unionid
    if (user.claims !== undefined && Object.keys(user.claims).length > 0) session.claims = user.claims
    const refreshToken = refreshTokenOf.first(ref)
    const ttl = Math.min(config.REFRESH_TOKEN_TTL, config.SESSION_MAX_AGE)
    const created = await store.createSession(ref, session, digest(refreshToken), ttl, {
      exclusive: rules.exclusiveTypes.has(deviceType) ? rules.mode : '',
      maxSessions: rules.maxSessions,
      accessTtlMs: rules.accessTtlSec * 1000
    })
    if (created.status === 'refused') throw deviceInUse(created.deviceType)
    if (created.status === 'banned') throw sessionEnded(created.end)
    return pair(appid, session, ref.sid, refreshToken, ttl)
  }

  return login
}
