// Decorates fastify.wechat: calls to WeChat's server API (code2Session). In development without
// credentials it starts the built-in simulator and talks to it over real HTTP.
import fp from 'fastify-plugin'
import { createWeChatClient, type Code2SessionResult } from '../lib/wechat-client.js'
import { startSimulator } from '../simulator/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    wechat: {
      /** The appid of the mini program; it is the `aud` of the access tokens. */
      readonly appid: string
      code2Session: (code: string) => Promise<Code2SessionResult>
    }
  }
}

export default fp(async function wechat (fastify) {
  const config = fastify.wechatAuthConfig
  let appid = config.WECHAT_APPID
  let secret = config.WECHAT_SECRET
  let apiBase = config.WECHAT_API_BASE
  if (config.useSimulator) {
    const sim = await startSimulator()
    fastify.addHook('onClose', async () => { await sim.close() })
    ;({ appid, secret } = sim)
    apiBase = sim.url
    fastify.log.warn({ simulator: sim.url, appid }, 'WeChat simulator started: codes are "<user>" or "<user>.<anything>"')
  }
  if (appid === undefined || secret === undefined) throw new Error('WECHAT_APPID and WECHAT_SECRET are required')
  const client = createWeChatClient({ appid, secret, apiBase, timeoutMs: config.WECHAT_TIMEOUT_MS, log: fastify.log })
  fastify.addHook('onClose', async () => { await client.close() })
  fastify.decorate('wechat', { appid, code2Session: client.code2Session })
}, { name: 'wechat', fastify: '5.x', dependencies: ['wechat-auth-config'] })
