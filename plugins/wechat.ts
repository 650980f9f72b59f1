// Decorates fastify.wechat: WeChat's server API for each configured mini program (code2Session,
// access_token, session_key checks, phone numbers). In development without credentials it starts
// the built-in simulator and talks to it over real HTTP.
import fp from 'fastify-plugin'
import { Agent } from 'undici'
import { createAccessTokenManager, type AccessTokenManager } from '../lib/wechat-access-token.js'
import { WxAppUnknownError } from '../lib/errors.js'
import type { WechatApp } from '../lib/schemas.js'
import { createWeChatClient, type Code2SessionResult, type PhoneNumber, type WeChatClient } from '../lib/wechat-client.js'
import { startSimulator, type Simulator } from '../simulator/index.js'

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
  /** The mini program's access_token, shared by every instance through the store. */
  getAccessToken: (appid?: string) => Promise<string>
  /** Whether WeChat still holds `sessionKey` as the user's current session_key (wxa/checksession). */
  checkSessionKey: (openid: string, sessionKey: string, appid?: string) => Promise<boolean>
  /** Has WeChat replace the user's session_key, given the current one; returns the new one. */
  resetSessionKey: (openid: string, sessionKey: string, appid?: string) => Promise<{ openid: string, sessionKey: string }>
  /** The phone number behind a code from the client's getPhoneNumber button. */
  getPhoneNumber: (code: string, appid?: string) => Promise<PhoneNumber>
}

declare module 'fastify' {
  interface FastifyInstance {
    wechat: WeChatApi
  }
}

interface AppRuntime {
  client: WeChatClient
  tokens: AccessTokenManager
}

/** The dev simulator on the configured port, or any free one when that is taken. */
async function devSimulator (port: number): Promise<Simulator> {
  try {
    return await startSimulator({ port })
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE' || port === 0) throw err
    return await startSimulator({ port: 0 })
  }
}

export default fp(async function wechat (fastify) {
  const config = fastify.wechatAuthConfig
  let apps: WechatApp[] = config.apps
  let apiBase = config.WECHAT_API_BASE
  if (config.useSimulator) {
    const sim = await devSimulator(config.WECHAT_SIMULATOR_PORT ?? (config.PORT === 0 ? 0 : (config.PORT + 1) % 65536))
    fastify.addHook('onClose', async () => { await sim.close() })
    apps = [{ appid: sim.appid, secret: sim.secret }]
    apiBase = sim.url
    fastify.log.warn({ simulator: sim.url, appid: sim.appid },
      'WeChat simulator started: login codes are "<user>" or "<user>.<anything>"; POST <simulator>/dev/encrypt?user=<user> encrypts test data')
  }
  const first = apps[0]
  if (first === undefined) throw new Error('no mini program configured (WECHAT_APPID and WECHAT_SECRET, or WECHAT_APPS)')

  // One connection pool for every mini program's client.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 128 })
  fastify.addHook('onClose', async () => { await dispatcher.destroy() })
  const runtimes = new Map<string, AppRuntime>()
  for (const app of apps) {
    const client = createWeChatClient({ ...app, apiBase, timeoutMs: config.WECHAT_TIMEOUT_MS, log: fastify.log, dispatcher })
    const tokens = createAccessTokenManager({
      name: app.appid,
      store: fastify.wechatAuthStore,
      fetch: async (deadline) => await client.stableToken(false, deadline),
      timeoutMs: config.WECHAT_TIMEOUT_MS,
      storeTimeoutMs: config.STORE_TIMEOUT_MS,
      log: fastify.log
    })
    runtimes.set(app.appid, { client, tokens })
  }
  const appids = Object.freeze(apps.map((a) => a.appid))

  function appOf (appid?: string): string {
    if (appid === undefined) {
      if (appids.length === 1) return appids[0] as string
      throw new WxAppUnknownError('An appid is required: this gateway serves several mini programs')
    }
    if (!runtimes.has(appid)) throw new WxAppUnknownError(`${appid.slice(0, 64)} is not a mini program this gateway serves`)
    return appid
  }
  const runtimeOf = (appid?: string): AppRuntime => runtimes.get(appOf(appid)) as AppRuntime

  fastify.decorate('wechat', {
    appid: first.appid,
    appids,
    appOf,
    code2Session: async (code, appid) => await runtimeOf(appid).client.code2Session(code),
    getAccessToken: async (appid) => await runtimeOf(appid).tokens.get(),
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
  } satisfies WeChatApi)
}, { name: 'wechat', fastify: '5.x', dependencies: ['wechat-auth-config', 'wechat-auth-store'] })
