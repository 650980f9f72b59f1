// Loads and checks the configuration. Pure: the config plugin and server.ts both use it.
import { randomBytes } from 'node:crypto'
import envSchema from 'env-schema'
import { ConfigError } from './errors.js'
import { ConfigSchema, type Config, type ConfigInput } from './schemas.js'

const KNOWN = new Set(Object.keys(ConfigSchema.properties))
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

/**
 * Validates the configuration from the environment and explicit values (explicit values win).
 * Unknown keys in `explicit` are refused (a typo should not silently fall back to a default);
 * unrelated environment variables are ignored; empty strings count as unset.
 */
export function loadConfig (env: Record<string, string | undefined> | false, explicit: ConfigInput = {}): Config {
  const unknown = Object.keys(explicit).filter((k) => !KNOWN.has(k))
  if (unknown.length > 0) throw new ConfigError(`unknown option(s) ${unknown.join(', ')}`)
  const pick = (src: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(src).filter(([k, v]) => KNOWN.has(k) && v !== undefined && v !== ''))
  try {
    return envSchema<Config>({ schema: ConfigSchema, data: [pick(env === false ? {} : env), pick(explicit)], dotenv: false })
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
}

export interface ResolvedConfig extends Config {
  production: boolean
  /** The JWT secret in use: JWT_SECRET, or a random one generated for this process in development. */
  jwtSecret: string
  /** Development without WeChat credentials: the gateway runs the built-in WeChat simulator. */
  useSimulator: boolean
  /** What development mode filled in by itself, to be said loudly at boot. */
  devDefaults: string[]
}

/**
 * Applies the production rules (refuse to run without real credentials, Redis and a strong secret)
 * and the development defaults (simulator, in-memory store, random secret).
 */
export function resolveConfig (config: Config, opts: { hasRedisClient: boolean }): ResolvedConfig {
  const production = config.NODE_ENV === 'production'
  const hasAppid = config.WECHAT_APPID !== undefined
  const hasSecret = config.WECHAT_SECRET !== undefined
  if (hasAppid !== hasSecret) throw new ConfigError('WECHAT_APPID and WECHAT_SECRET must be set together')
  const hasRedis = opts.hasRedisClient || config.REDIS_URL !== undefined
  if (production) {
    const missing = [
      hasAppid ? null : 'WECHAT_APPID',
      hasSecret ? null : 'WECHAT_SECRET',
      hasRedis ? null : 'REDIS_URL',
      config.JWT_SECRET === undefined ? 'JWT_SECRET' : null
    ].filter((x) => x !== null)
    if (missing.length > 0) throw new ConfigError(`NODE_ENV=production requires ${missing.join(', ')}`)
    if (new Set(config.JWT_SECRET).size < 10) throw new ConfigError('JWT_SECRET is too weak (too few distinct characters)')
    // With `true` the client's own X-Forwarded-For decides its IP, and so its rate-limit budget.
    if (config.TRUST_PROXY === 'true') throw new ConfigError('TRUST_PROXY=true lets clients choose their IP; set the number of proxies in front (e.g. 1) or their addresses')
  }
  // The simulator lets anyone log in as anyone: never let it face a network.
  if (!hasAppid && !LOOPBACK.test(config.HOST)) {
    throw new ConfigError(`HOST=${config.HOST} needs WECHAT_APPID and WECHAT_SECRET: the built-in WeChat simulator only runs on loopback`)
  }
  const devDefaults: string[] = []
  if (!hasAppid) devDefaults.push('no WECHAT_APPID/WECHAT_SECRET: using the built-in WeChat simulator')
  if (!hasRedis) devDefaults.push('no REDIS_URL: sessions live in process memory and vanish on restart')
  if (config.JWT_SECRET === undefined) devDefaults.push('no JWT_SECRET: a random one was generated; tokens die with the process')
  return {
    ...config,
    production,
    jwtSecret: config.JWT_SECRET ?? randomBytes(48).toString('base64url'),
    useSimulator: !hasAppid,
    devDefaults
  }
}
