// WeChat's server API for every mini program the gateway serves: a client and an access_token
// manager per appid, and the choice of mini program a caller means. plugins/wechat.ts decorates it.
import type { Dispatcher } from 'undici'
import { WxAppUnknownError } from './errors.js'
import type { Logger } from './logger.js'
import type { WechatApp } from './schemas.js'
import { createAccessTokenManager, type AccessTokenManager, type AccessTokenManagerOptions } from './wechat-access-token.js'
import { createWeChatClient, type Code2SessionResult, type PhoneNumber, type WeChatClient } from './wechat-client.js'

export interface WeChatApiOptions {
  /** The mini programs served; the first is the default. */
  apps: WechatApp[]
  apiBase: string
  /** WECHAT_TIMEOUT_MS and STORE_TIMEOUT_MS. */
  timeoutMs: number
  storeTimeoutMs: number
  /** Where the access_tokens are shared between instances. */
  store: AccessTokenManagerOptions['store']
  log: Logger
  /** The connection pool of every client; the caller closes it. */
  dispatcher: Dispatcher
}

export interface WeChatApi {
  /** The default mini program (the first configured): the one used when no appid is given. */
  readonly appid: string
  /** Every mini program served. */
  readonly appids: readonly string[]
  /**
   * The appid a caller means: `appid` when it is configured, the only one when omitted and only one
   * is configured; WX_APP_UNKNOWN (400) otherwise.
   */
  appOf: (appid?: string) => string
  code2Session: (code: string, appid?: string) => Promise<Code2SessionResult>
  /**
   * The mini program's access_token, shared by every instance through the store. A call made with it
   * that WeChat refuses cannot renew it from here: use withAccessToken.
   */
  getAccessToken: (appid?: string) => Promise<string>
  /**
   * Runs `call` with the mini program's access_token and an answer deadline (ms epoch, twice
   * WECHAT_TIMEOUT_MS away). When `call` throws WX_ACCESS_TOKEN_REJECTED (WeChat's 40001, 40014,
   * 42001: the token was replaced, by a force refresh elsewhere, say), the token is renewed for every
   * instance and `call` runs once more; a second refusal is thrown.
   */
  withAccessToken: <T>(call: (token: string, deadline: number) => Promise<T>, appid?: string) => Promise<T>
  /** Whether WeChat still holds `sessionKey` as the user's current session_key (wxa/checksession). */
  checkSessionKey: (openid: string, sessionKey: string, appid?: string) => Promise<boolean>
  /** Has WeChat replace the user's session_key, given the current one; returns the new one. */
  resetSessionKey: (openid: string, sessionKey: string, appid?: string) => Promise<{ openid: string, sessionKey: string }>
  /** The phone number behind a code from the client's getPhoneNumber button. */
  getPhoneNumber: (code: string, appid?: string) => Promise<PhoneNumber>
}

interface AppRuntime {
  client: WeChatClient
  tokens: AccessTokenManager
}

export function createWeChatApi (opts: WeChatApiOptions): WeChatApi {
  const { apps, timeoutMs, log } = opts
  const first = apps[0]
  if (first === undefined) {
    throw new Error('no mini program configured (WECHAT_APPID and WECHAT_SECRET, or WECHAT_APPS; in development, the wechat-auth-simulator plugin)')
  }
  const runtimes = new Map<string, AppRuntime>()
  for (const app of apps) {
    const client = createWeChatClient({ ...app, apiBase: opts.apiBase, timeoutMs, log, dispatcher: opts.dispatcher })
    const fetch = async (deadline: number): ReturnType<WeChatClient['stableToken']> => await client.stableToken(false, deadline)
    const tokens = createAccessTokenManager({ name: app.appid, store: opts.store, fetch, timeoutMs, storeTimeoutMs: opts.storeTimeoutMs, log })
    runtimes.set(app.appid, { client, tokens })
  }
  const appids = Object.freeze(apps.map((a) => a.appid))

  const APPID = /^wx[0-9a-f]{16}$/
  function appOf (appid?: string): string {
    if (appid === undefined) {
      if (appids.length === 1) return appids[0] as string
      throw new WxAppUnknownError('An appid is required: this gateway serves several mini programs')
    }
    // Named only when it has an appid's shape: the caller's string (a token pasted in the wrong field)
    // is neither answered nor logged back.
    if (!runtimes.has(appid)) throw new WxAppUnknownError(`${APPID.test(appid) ? appid : 'The appid'} is not a mini program this gateway serves`)
    return appid
  }
  const runtimeOf = (appid?: string): AppRuntime => runtimes.get(appOf(appid)) as AppRuntime

  return {
    appid: first.appid,
    appids,
    appOf,
    code2Session: async (code, appid) => await runtimeOf(appid).client.code2Session(code),
    getAccessToken: async (appid) => await runtimeOf(appid).tokens.get(),
    withAccessToken: async (call, appid) => await runtimeOf(appid).tokens.withToken(call),
    checkSessionKey: async (openid, sessionKey, appid) => {
      const { client, tokens } = runtimeOf(appid)
      return await tokens.withToken(async (token, deadline) => await client.checkSessionKey(token, openid, sessionKey, deadline))
    },
    resetSessionKey: async (openid, sessionKey, appid) => {
      const { client, tokens } = runtimeOf(appid)
      return await tokens.withToken(async (token, deadline) => await client.resetSessionKey(token, openid, sessionKey, deadline))
    },
    getPhoneNumber: async (code, appid) => {
      const { client, tokens } = runtimeOf(appid)
      return await tokens.withToken(async (token, deadline) => await client.getPhoneNumber(token, code, deadline))
    }
  }
}
