// WeChat's server API for one mini program: the endpoints it calls (jscode2session, stable_token,
// checksession, resetusersessionkey, getuserphonenumber) and what a valid answer of each looks
// like. How calls travel (deadlines, retry, errcodes): lib/wechat-transport.ts. It knows nothing
// about Fastify, tokens or sessions.
import { WxBadResponseError, WxCredentialsRejectedError, WxPhoneCodeInvalidError, WxSessionKeyStaleError } from './errors.js'
import type { PhoneResponse } from './schemas.js'
import { sessionKeySignature } from './wechat-crypto.js'
import { createWeChatTransport, type WeChatCall, type WeChatTransportOptions } from './wechat-transport.js'

export interface WeChatClientOptions extends WeChatTransportOptions {
  appid: string
}

export interface Code2SessionResult {
  openid: string
  unionid?: string
  sessionKey: string
}

export interface StableToken {
  accessToken: string
  /** Seconds the token stays valid, as WeChat said. */
  expiresIn: number
}

/** What getuserphonenumber confirms; the phone route answers exactly this (one schema for both). */
export type PhoneNumber = PhoneResponse

// What WeChat's ids and keys look like; anything else is not stored (values are packed in Redis).
const ID = /^[A-Za-z0-9_-]{1,64}$/
// A session_key is 16 bytes (the AES-128 key of the user's data): another length would be kept, then
// make every decrypt fail as if the client's data were wrong.
const SESSION_KEY = /^[A-Za-z0-9+/]{22}==$/
const ACCESS_TOKEN = /^[\x21-\x7e]{16,2048}$/
const PHONE = /^[0-9+ -]{1,32}$/
// WeChat hands out a new stable token in the last 5 minutes of the old one; a shorter life is not
// a token worth keeping (the manager stops handing one out in its last 30 s).
const MIN_TOKEN_LIFE_S = 60

/** The query and secrets of a call made with an access_token and a session_key signature. */
function signed (accessToken: string, openid: string, sessionKey: string): Pick<WeChatCall, 'query' | 'secrets'> {
  const signature = sessionKeySignature(sessionKey)
  return {
    query: { access_token: accessToken, openid, signature, sig_method: 'hmac_sha256' },
    secrets: [accessToken, signature, sessionKey]
  }
}

function code2SessionOf (body: Record<string, unknown>): Code2SessionResult {
  const { openid, session_key: sessionKey, unionid } = body
  if (typeof openid !== 'string' || !ID.test(openid) || typeof sessionKey !== 'string' || !SESSION_KEY.test(sessionKey)) {
    throw new WxBadResponseError('no valid openid or session_key')
  }
  if (typeof unionid === 'string' && unionid !== '') {
    if (!ID.test(unionid)) throw new WxBadResponseError('invalid unionid')
    return { openid, unionid, sessionKey }
  }
  return { openid, sessionKey }
}

function stableTokenOf (body: Record<string, unknown>): StableToken {
  const { access_token: accessToken, expires_in: expiresIn } = body
  if (typeof accessToken !== 'string' || !ACCESS_TOKEN.test(accessToken) ||
    typeof expiresIn !== 'number' || !Number.isInteger(expiresIn) || expiresIn < MIN_TOKEN_LIFE_S || expiresIn > 86400 * 31) {
    throw new WxBadResponseError('no valid access_token or expires_in')
  }
  return { accessToken, expiresIn }
}

/** resetusersessionkey's answer, which must be for the user asked about. */
function newSessionKeyOf (body: Record<string, unknown>, openid: string): { openid: string, sessionKey: string } {
  const { openid: id, session_key: newKey } = body
  if (typeof id !== 'string' || id !== openid || typeof newKey !== 'string' || !SESSION_KEY.test(newKey)) {
    throw new WxBadResponseError('no valid openid or session_key')
  }
  return { openid: id, sessionKey: newKey }
}

/** getuserphonenumber's answer, which must carry the watermark of the mini program that asked. */
function phoneNumberOf (body: Record<string, unknown>, appid: string): PhoneNumber {
  const info = body.phone_info as Record<string, unknown> | undefined
  const { phoneNumber, purePhoneNumber, countryCode } = info ?? {}
  const watermark = info?.watermark as { appid?: unknown } | undefined
  if (typeof phoneNumber !== 'string' || !PHONE.test(phoneNumber) || typeof purePhoneNumber !== 'string' ||
    !PHONE.test(purePhoneNumber) || typeof countryCode !== 'string' || !PHONE.test(countryCode)) {
    throw new WxBadResponseError('no valid phone_info')
  }
  if (watermark?.appid !== appid) throw new WxBadResponseError('phone_info of another mini program')
  return { phoneNumber, purePhoneNumber, countryCode }
}

export function createWeChatClient (opts: WeChatClientOptions) {
  const { appid, secret } = opts
  const { call, close } = createWeChatTransport(opts)

  return {
    appid,

    /** Exchanges a wx.login() code for the user's openid, unionid and session_key. */
    async code2Session (code: string): Promise<Code2SessionResult> {
      const query = { appid, secret, js_code: code, grant_type: 'authorization_code' }
      return code2SessionOf(await call({ path: '/sns/jscode2session', query, secrets: [code] }))
    },

    /**
     * A stable access_token (cgi-bin/stable_token) in normal mode: WeChat answers the current token
     * while it has time left and a new one near its end, the old one staying valid meanwhile.
     * force_refresh is limited to 20 a day and 30 s apart: only for an operator's explicit call.
     */
    async stableToken (forceRefresh = false, deadline?: number): Promise<StableToken> {
      return stableTokenOf(await call({
        deadline,
        path: '/cgi-bin/stable_token',
        query: {},
        body: { grant_type: 'client_credential', appid, secret, force_refresh: forceRefresh },
        secrets: [],
        // For this call 40001 means a wrong secret, not a stale access_token.
        overrides: { 40001: () => new WxCredentialsRejectedError('40001') }
      }))
    },

    /** Whether WeChat still holds `sessionKey` as the user's session_key (wxa/checksession). */
    async checkSessionKey (accessToken: string, openid: string, sessionKey: string, deadline?: number): Promise<boolean> {
      const body = await call({ path: '/wxa/checksession', ...signed(accessToken, openid, sessionKey), overrides: { 87009: () => 'return' }, deadline })
      return Number(body.errcode ?? 0) === 0
    },

    /** Has WeChat issue a new session_key for the user; needs the current one (wxa/resetusersessionkey). */
    async resetSessionKey (accessToken: string, openid: string, sessionKey: string, deadline?: number): Promise<{ openid: string, sessionKey: string }> {
      const overrides = { 87009: () => new WxSessionKeyStaleError() }
      return newSessionKeyOf(await call({ path: '/wxa/resetusersessionkey', ...signed(accessToken, openid, sessionKey), overrides, deadline }), openid)
    },

    /** The phone number behind a getPhoneNumber button's code (wxa/business/getuserphonenumber). */
    async getPhoneNumber (accessToken: string, code: string, deadline?: number): Promise<PhoneNumber> {
      return phoneNumberOf(await call({
        deadline,
        path: '/wxa/business/getuserphonenumber',
        query: { access_token: accessToken },
        body: { code },
        secrets: [accessToken, code],
        overrides: { 40029: () => new WxPhoneCodeInvalidError(), 40163: () => new WxPhoneCodeInvalidError() }
      }), appid)
    },

    close
  }
}

export type WeChatClient = ReturnType<typeof createWeChatClient>
