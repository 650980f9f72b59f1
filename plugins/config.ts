// Decorates fastify.wechatAuthConfig: the validated configuration. Refuses to boot on a bad value.
import fp from 'fastify-plugin'
import { loadConfig, resolveConfig, type ResolvedConfig } from '../lib/config.js'
import { APPS, BOOLEAN, CONFIG, ENV, checkOptions } from '../lib/plugin-options.js'
import type { ConfigInput, WechatApp } from '../lib/schemas.js'

export interface ConfigPluginOptions {
  /** Values by environment-variable name; they win over `env`. */
  config?: ConfigInput
  /**
   * Values by environment-variable name from somewhere else, such as `process.env`. Nothing is read
   * from the environment unless it is passed here: a host's own JWT_SECRET, PORT or REDIS_URL are
   * not the gateway's.
   */
  env?: Record<string, string | undefined> | false
  /** Mini programs besides WECHAT_APPID/WECHAT_APPS (the first configured is the default one). */
  apps?: WechatApp[]
  /** Whether the host app passes its own Redis client (then REDIS_URL is not needed). */
  hasRedisClient?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    wechatAuthConfig: ResolvedConfig
  }
}

export default fp<ConfigPluginOptions>(async function wechatAuthConfig (fastify, opts) {
  checkOptions(opts, { plugin: 'wechatAuthConfig', rules: { config: CONFIG, env: ENV, apps: APPS, hasRedisClient: BOOLEAN }, encapsulated: false })
  const config = resolveConfig(loadConfig(opts.env ?? false, opts.config, { inHost: true }), {
    hasRedisClient: opts.hasRedisClient === true,
    apps: opts.apps,
    processInProduction: process.env.NODE_ENV === 'production',
    hostRedisUnused: opts.hasRedisClient !== true && fastify.hasDecorator('redis')
  })
  if (config.devDefaults.length > 0) {
    fastify.log.warn({ devDefaults: config.devDefaults },
      '*** DEVELOPMENT MODE: not for production (set NODE_ENV=production to forbid these defaults) ***')
  }
  fastify.decorate('wechatAuthConfig', config)
}, { name: 'wechat-auth-config', fastify: '5.x' })
