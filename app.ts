// The whole gateway as one plugin. It only registers the parts, in the order they depend on each
// other; everything it decorates (fastify.authenticate, fastify.wechat, ...) is visible to the host.
import fp from 'fastify-plugin'
import { APPS, checkOptions, CONFIG, ENV, FUNCTION, isRecord, PATH_OR_FALSE, REDIS, type OptionRule } from './lib/plugin-options.js'
import authorizePlugin from './plugins/authorize.js'
import authPlugin from './plugins/jwt.js'
import configPlugin, { type ConfigPluginOptions } from './plugins/config.js'
import openapiPlugin, { type OpenapiPluginOptions } from './plugins/openapi.js'
import sessionsPlugin, { type SessionsPluginOptions } from './plugins/sessions.js'
import simulatorPlugin from './plugins/simulator.js'
import storePlugin, { type StorePluginOptions } from './plugins/store.js'
import wechatPlugin from './plugins/wechat.js'
import authRoutes from './routes/auth.js'
import demoRoutes, { type DemoRoutesOptions } from './routes/demo.js'
import healthRoutes from './routes/health.js'
import jwksRoutes from './routes/jwks.js'
import metricsPlugin, { type MetricsOptions } from './plugins/metrics.js'
import wechatRoutes, { type WechatRoutesOptions } from './routes/wechat.js'

export interface WechatAuthOptions extends Omit<ConfigPluginOptions, 'hasRedisClient'>, StorePluginOptions, SessionsPluginOptions, WechatRoutesOptions, OpenapiPluginOptions, DemoRoutesOptions {
  /** Where GET health answers ('/health' by default); false to leave health checks to the host. */
  healthPath?: string | false
  /** Where the JWKS answers with JWT_ALGORITHM ES256 or EdDSA ('/.well-known/jwks.json' by default); false for nowhere. */
  jwksPath?: string | false
  /**
   * Prometheus metrics (fastify.wechatAuthMetrics.registry): true, or options (a registry of the
   * host's, whether Node's default metrics and every route's requests are counted). Off by default.
   * Serve them with routes/metrics.ts (`wechatAuthMetricsRoute`) where the host wants.
   */
  metrics?: boolean | MetricsOptions
}

// Every option, with what it must be: checked before anything starts (a typo, a configuration key
// given as an option, a value of the wrong kind refuse the boot with CONFIG_INVALID naming it).
const OPTIONS: Record<keyof WechatAuthOptions, OptionRule> = {
  config: CONFIG,
  env: ENV,
  apps: APPS,
  redis: REDIS,
  resolveUser: FUNCTION,
  onPhoneNumber: FUNCTION,
  healthPath: PATH_OR_FALSE,
  jwksPath: PATH_OR_FALSE,
  openapiPath: PATH_OR_FALSE,
  openapiUiPath: PATH_OR_FALSE,
  demoPath: PATH_OR_FALSE,
  metrics: [(value) => typeof value === 'boolean' || isRecord(value), 'true, false or an object of metrics options']
}

export default fp<WechatAuthOptions>(async function wechatAuth (fastify, opts) {
  // Fastify's prefix, logLevel and logSerializers are refused too: it ignores them for this plugin.
  checkOptions(opts, { plugin: '', rules: OPTIONS, encapsulated: false })
  await fastify.register(configPlugin, { config: opts.config, env: opts.env, apps: opts.apps, hasRedisClient: opts.redis !== undefined })
  // Before the store, whose operations it times.
  if (opts.metrics !== undefined && opts.metrics !== false) await fastify.register(metricsPlugin, opts.metrics === true ? {} : opts.metrics)
  await fastify.register(storePlugin, { redis: opts.redis })
  // Development without WeChat credentials: the built-in simulator stands in for WeChat.
  if (fastify.wechatAuthConfig.useSimulator) await fastify.register(simulatorPlugin)
  await fastify.register(wechatPlugin)
  await fastify.register(authPlugin)
  await fastify.register(authorizePlugin)
  await fastify.register(sessionsPlugin, { resolveUser: opts.resolveUser })
  // Before the routes, which it documents as they are added.
  await fastify.register(openapiPlugin, { openapiPath: opts.openapiPath, openapiUiPath: opts.openapiUiPath })
  await fastify.register(authRoutes, { prefix: fastify.wechatAuthConfig.AUTH_PREFIX })
  await fastify.register(wechatRoutes, { prefix: `${fastify.wechatAuthConfig.AUTH_PREFIX}/wechat`, onPhoneNumber: opts.onPhoneNumber })
  // Development with the simulator only: the web QR login in a browser.
  await fastify.register(demoRoutes, { demoPath: opts.demoPath })
  if (opts.healthPath !== false) await fastify.register(healthRoutes, { path: opts.healthPath ?? '/health' })
  if (fastify.wechatAuthConfig.signing !== undefined && opts.jwksPath !== false) {
    await fastify.register(jwksRoutes, { path: opts.jwksPath ?? '/.well-known/jwks.json' })
  }
}, { name: 'fastify-wechat-auth', fastify: '5.x' })
