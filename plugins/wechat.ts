// Decorates fastify.wechat: WeChat's server API for each configured mini program (code2Session,
// access_token, session_key checks, phone numbers). In development without credentials the
// wechat-auth-simulator plugin, registered before this one, stands in for WeChat.
import fp from 'fastify-plugin'
import { createWeChatApi, type WeChatApi } from '../lib/wechat-api.js'
import { createWeChatDispatcher } from '../lib/wechat-transport.js'
import { checkOptions } from '../lib/plugin-options.js'

export type { WeChatApi }

declare module 'fastify' {
  interface FastifyInstance {
    wechat: WeChatApi
  }
}

export default fp(async function wechat (fastify, opts) {
  checkOptions(opts, { plugin: 'wechat', rules: {}, encapsulated: false })
  const config = fastify.wechatAuthConfig
  // Decorated by plugins/simulator.ts only while the development simulator runs.
  const simulator = fastify.hasDecorator('wechatAuthSimulator') ? fastify.wechatAuthSimulator : null
  // One connection pool for every mini program's client.
  const dispatcher = createWeChatDispatcher()
  fastify.addHook('onClose', async () => { await dispatcher.destroy() })
  fastify.decorate('wechat', createWeChatApi({
    apps: simulator?.apps ?? config.apps,
    apiBase: simulator?.url ?? config.WECHAT_API_BASE,
    timeoutMs: config.WECHAT_TIMEOUT_MS,
    storeTimeoutMs: config.STORE_TIMEOUT_MS,
    store: fastify.wechatAuthStore,
    log: fastify.log,
    dispatcher
  }))
}, { name: 'wechat', fastify: '5.x', dependencies: ['wechat-auth-config', 'wechat-auth-store'] })
