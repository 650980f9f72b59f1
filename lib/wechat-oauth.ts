// An official account's web authorization (H5 pages opened inside WeChat): the authorize URL the
// browser is sent to, and the two server calls after it, sns/oauth2/access_token (the code for the
// user's openid, unionid and a user access_token) and sns/userinfo (snsapi_userinfo only). Calls
// travel like every WeChat call (lib/wechat-transport.ts: deadline, one retry, errcodes, scrubbed
// logs). The user access_token is WeChat's for this user, used at once and never kept or logged.
import { WxBadResponseError, WxOauthCodeInvalidError, WxOauthCodeUsedError } from './errors.js'
import type { WechatApp } from './schemas.js'
import { createWeChatTransport, type WeChatTransportOptions } from './wechat-transport.js'

export type OAuthScope = 'snsapi_base' | 'snsapi_userinfo'

/** What the code gave: who the user is in the official account, and a user access_token for userinfo. */
export interface OAuthGrant {
  openid: string
  unionid?: string
  /** The scopes WeChat granted (comma-separated in its answer). */
  scopes: string[]
  accessToken: string
}

/** What sns/userinfo says about the user (snsapi_userinfo), as WeChat names it. */
export interface OAuthUserInfo {
  nickname: string
  /** The avatar's URL ('' when none). */
  headimgurl: string
  /** 1 male, 2 female, 0 unknown (WeChat no longer fills it in). */
  sex: number
  province: string
  city: string
  country: string
}

export interface WeChatOAuthOptions extends Omit<WeChatTransportOptions, 'secret'> {
  account: WechatApp
  /** WeChat's authorize page (WECHAT_OA_AUTHORIZE_URL). */
  authorizeUrl: string
}

const ID = /^[A-Za-z0-9_-]{1,64}$/
const ACCESS_TOKEN = /^[\x21-\x7e]{16,2048}$/
const text = (value: unknown, max: number): string => typeof value === 'string' ? value.slice(0, max) : ''

function grantOf (body: Record<string, unknown>): OAuthGrant {
  const { openid, unionid, scope, access_token: accessToken } = body
  if (typeof openid !== 'string' || !ID.test(openid) || typeof accessToken !== 'string' || !ACCESS_TOKEN.test(accessToken)) {
    throw new WxBadResponseError('no valid openid or access_token')
  }
  const grant: OAuthGrant = { openid, scopes: typeof scope === 'string' ? scope.split(',') : [], accessToken }
  if (typeof unionid === 'string' && unionid !== '') {
    if (!ID.test(unionid)) throw new WxBadResponseError('invalid unionid')
    grant.unionid = unionid
  }
  return grant
}

/** sns/userinfo's answer, which must be about the user asked for. */
function userInfoOf (body: Record<string, unknown>, openid: string): { info: OAuthUserInfo, unionid?: string } {
  if (body.openid !== openid) throw new WxBadResponseError('userinfo of another user')
  const info = {
    nickname: text(body.nickname, 64),
    headimgurl: /^https?:\/\//.test(text(body.headimgurl, 512)) ? text(body.headimgurl, 512) : '',
    sex: body.sex === 1 || body.sex === 2 ? body.sex : 0,
    province: text(body.province, 64),
    city: text(body.city, 64),
    country: text(body.country, 64)
  }
  const { unionid } = body
  if (typeof unionid === 'string' && unionid !== '') {
    if (!ID.test(unionid)) throw new WxBadResponseError('invalid unionid')
    return { info, unionid }
  }
  return { info }
}

export function createWeChatOAuth (opts: WeChatOAuthOptions) {
  const { appid, secret } = opts.account
  const { call, close } = createWeChatTransport({ ...opts, secret })
  // WeChat's codes and the user's access_token: refused by WeChat, they are the client's to renew.
  const codeErrors = { 40029: () => new WxOauthCodeInvalidError(), 40163: () => new WxOauthCodeUsedError() }
  const tokenErrors = { 40001: () => new WxBadResponseError('errcode 40001'), 42001: () => new WxBadResponseError('errcode 42001') }

  return {
    appid,

    /** Where to send the browser: WeChat's authorize page, back to `redirectUri` with a code and `state`. */
    authorizeUrl (redirectUri: string, scope: OAuthScope, state: string): string {
      const query = new URLSearchParams({ appid, redirect_uri: redirectUri, response_type: 'code', scope, state })
      return `${opts.authorizeUrl}?${query.toString()}#wechat_redirect`
    },

    /** Exchanges an authorization code (sns/oauth2/access_token). */
    async exchangeCode (code: string): Promise<OAuthGrant> {
      const query = { appid, secret, code, grant_type: 'authorization_code' }
      return grantOf(await call({ path: '/sns/oauth2/access_token', query, secrets: [code], overrides: codeErrors }))
    },

    /** The user's nickname and avatar (sns/userinfo), with a grant of scope snsapi_userinfo. */
    async userInfo (grant: OAuthGrant): Promise<{ info: OAuthUserInfo, unionid?: string }> {
      const query = { access_token: grant.accessToken, openid: grant.openid, lang: 'zh_CN' }
      return userInfoOf(await call({ path: '/sns/userinfo', query, secrets: [grant.accessToken], overrides: tokenErrors }), grant.openid)
    },

    close
  }
}

export type WeChatOAuth = ReturnType<typeof createWeChatOAuth>
