// Development only. Starts the built-in WeChat simulator when the configuration asks for it (no
// WeChat credentials: lib/config.ts), decorates fastify.wechatAuthSimulator with where it listens
// and the mini program it serves, for plugins/wechat.ts to talk to, and stops it on close. app.ts
// registers it only then; registered by hand with credentials, it starts nothing.
import fp from 'fastify-plugin'
import { checkOptions } from '../lib/plugin-options.js'
import { startSimulator, type Simulator } from '../simulator/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    wechatAuthSimulator: Pick<Simulator, 'url' | 'apps'>
  }
}

/** The simulator on `port`, or on any free one when that is taken. */
async function startOn (port: number): Promise<Simulator> {
  try {
    return await startSimulator({ port })
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE' || port === 0) throw err
    return await startSimulator({ port: 0 })
  }
}

export default fp(async function wechatAuthSimulator (fastify, opts) {
  checkOptions(opts, { plugin: 'wechatAuthSimulator', rules: {}, encapsulated: false })
  const config = fastify.wechatAuthConfig
  if (!config.useSimulator) return
  const sim = await startOn(config.WECHAT_SIMULATOR_PORT ?? (config.PORT === 0 ? 0 : (config.PORT + 1) % 65536))
  fastify.addHook('onClose', async () => { await sim.close() })
  fastify.decorate('wechatAuthSimulator', { url: sim.url, apps: sim.apps })
  fastify.log.warn({ simulator: sim.url, appid: sim.appid },
    'WeChat simulator started: login codes are "<user>" or "<user>.<anything>"; POST <simulator>/dev/encrypt?user=<user> encrypts test data')
}, { name: 'wechat-auth-simulator', fastify: '5.x', dependencies: ['wechat-auth-config'] })
