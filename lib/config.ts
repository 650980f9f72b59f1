// Loads and checks the configuration. Pure: the config plugin and server.ts both use it.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { Value } from '@sinclair/typebox/value'
import envSchema from 'env-schema'
import { checkLifetimes, checkMode, checkRedisSettings, checkServer, schemaMessage, type SchemaError } from './config-checks.js'
import { ConfigError } from './errors.js'
import { h5Of, type H5Config } from './h5-config.js'
import { fitsAlgorithm, parsePrivateKey, parsePublicKeys, type AsymmetricAlgorithm } from './signing-keys.js'
import { ConfigSchema, STANDALONE_KEYS, WechatApps, type Config, type ConfigInput, type WechatApp } from './schemas.js'

const KNOWN = new Set(Object.keys(ConfigSchema.properties))
const INTEGERS = new Set(Object.entries(ConfigSchema.properties).filter(([, schema]) => schema.type === 'integer').map(([key]) => key))
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

/**
 * Validates the configuration from the environment and explicit values (explicit values win).
 * Unknown keys in `explicit` are refused (a typo should not silently fall back to a default);
 * unrelated environment variables are ignored; empty strings count as unset; numbers are decimal digits.
 * For the plugin in a host app (`inHost`), the environment's keys of the standalone server
 * (STANDALONE_KEYS) are unrelated too: a host's own.
 */
export function loadConfig (env: Record<string, string | undefined> | false, explicit: ConfigInput = {}, { inHost = false } = {}): Config {
  const unknown = Object.keys(explicit).filter((k) => !KNOWN.has(k))
  if (unknown.length > 0) throw new ConfigError(`unknown option(s) ${unknown.join(', ')}`)
  const pick = (src: Record<string, unknown>, known: (key: string) => boolean = (k) => KNOWN.has(k)): Record<string, unknown> =>
    Object.fromEntries(Object.entries(src).filter(([k, v]) => known(k) && v !== undefined && v !== ''))
  // Numbers as decimal digits: the schema's coercion would read ' ' as 0 and 0x10 as 16. The values
  // that count only: one the explicit config overrides is not read.
  const fromEnv = (k: string): boolean => KNOWN.has(k) && !(inHost && STANDALONE_KEYS.has(k))
  const data: [Record<string, unknown>, Record<string, unknown>] = [pick(env === false ? {} : env, fromEnv), pick(explicit)]
  const odd = Object.entries(Object.assign({}, ...data) as Record<string, unknown>)
    .find(([k, v]) => INTEGERS.has(k) && typeof v === 'string' && !/^-?\d+$/.test(v))
  if (odd !== undefined) throw new ConfigError(`${odd[0]} must be a whole number in decimal digits`)
  try {
    // env-schema reads process.env unless told not to (`env: false`): only what is passed here counts.
    return envSchema<Config>({ schema: ConfigSchema, data, env: false, dotenv: false })
  } catch (err) {
    throw new ConfigError(schemaMessage(err as SchemaError))
  }
}

export interface ResolvedConfig extends Config {
  production: boolean
  /**
   * The mini programs served, the first being the default: WECHAT_APPID/WECHAT_SECRET, then
   * WECHAT_APPS, then the plugin's `apps`. Empty when the built-in simulator stands in.
   */
  apps: WechatApp[]
  /** The JWT secret in use: JWT_SECRET, or a random one generated for this process in development. */
  jwtSecret: string
  /** With JWT_ALGORITHM ES256 or EdDSA: the key access tokens are signed with, and the previous public keys. */
  signing?: { algorithm: AsymmetricAlgorithm, privateKey: KeyObject, previousPublicKeys: KeyObject[] }
  /** Development without WeChat credentials: the gateway runs the built-in WeChat simulator. */
  useSimulator: boolean
  /**
   * H5 login, when on (H5_RETURN_URLS): the official account (WECHAT_OA_APPID/WECHAT_OA_SECRET; left out
   * in development with the simulator, whose account then stands in) and the pages WeChat may send the
   * browser back to.
   */
  h5?: H5Config
  /** Cookie mode (REFRESH_COOKIE): the device types whose refresh token is a cookie; none when off. */
  refreshCookieTypes: string[]
  /** What development mode filled in by itself, to be said loudly at boot. */
  devDefaults: string[]
}

/**
 * Applies the production rules (refuse to run without real credentials, Redis and a strong secret)
 * and the development defaults (simulator, in-memory store, random secret).
 */
export interface ResolveOptions {
  hasRedisClient: boolean
  apps?: unknown
  /**
   * The process says it runs in production (NODE_ENV=production in its environment). This is not
   * configuration, only a refusal: development defaults (the simulator lets anyone log in as anyone)
   * never run in such a process, whatever the plugin's options say.
   */
  processInProduction?: boolean
  /** The host app has a Redis client of its own (fastify.redis, from @fastify/redis) it did not pass. */
  hostRedisUnused?: boolean
  /** The standalone server resolves it (server.ts): its own HTTP settings are checked too (config-checks.ts). */
  standalone?: boolean
}

export function resolveConfig (config: Config, opts: ResolveOptions): ResolvedConfig {
  checkMode(config.NODE_ENV)
  const production = config.NODE_ENV === 'production'
  if (opts.processInProduction === true && !production) {
    throw new ConfigError('this process runs with NODE_ENV=production but the gateway\'s configuration does not: pass NODE_ENV: \'production\' in its config (development defaults such as the WeChat simulator never run in production)')
  }
  const apps = resolveApps(config, opts.apps)
  const hasAppid = apps.length > 0
  const hasRedis = checkRedis(config, opts.hasRedisClient)
  checkRedisSettings(config, hasRedis)
  const redisHint = opts.hostRedisUnused === true ? ' (this app has fastify.redis: pass it as `redis: fastify.redis`)' : ''
  if (production) {
    const missing = [
      hasAppid ? null : 'WECHAT_APPID and WECHAT_SECRET (or WECHAT_APPS)',
      hasRedis ? null : `REDIS_URL${redisHint}`,
      config.JWT_SECRET === undefined ? 'JWT_SECRET' : null
    ].filter((x) => x !== null)
    if (missing.length > 0) throw new ConfigError(`NODE_ENV=production requires ${missing.join(', ')}`)
    if (new Set(config.JWT_SECRET).size < 10) throw new ConfigError('JWT_SECRET is too weak (too few distinct characters)')
    // With `true` the client's own X-Forwarded-For decides its IP, and so its rate-limit budget.
    if (config.TRUST_PROXY === 'true') throw new ConfigError('TRUST_PROXY=true lets clients choose their IP; set the number of proxies in front (e.g. 1) or their addresses')
  }
  const deviceTypes = config.DEVICE_TYPES.split(',')
  if (!deviceTypes.includes(config.DEVICE_TYPE_DEFAULT)) throw new ConfigError('DEVICE_TYPE_DEFAULT must be one of DEVICE_TYPES')
  if ((config.EXCLUSIVE_DEVICE_TYPES ?? '').split(',').some((type) => type !== '' && !deviceTypes.includes(type))) {
    throw new ConfigError('EXCLUSIVE_DEVICE_TYPES must name types of DEVICE_TYPES')
  }
  if (config.JWT_SECRET_PREVIOUS !== undefined && (config.JWT_SECRET === undefined || config.JWT_SECRET_PREVIOUS === config.JWT_SECRET)) {
    throw new ConfigError('JWT_SECRET_PREVIOUS needs a JWT_SECRET that differs from it')
  }
  // The simulator lets anyone log in as anyone: never let it face a network.
  if (!hasAppid && !LOOPBACK.test(config.HOST)) {
    throw new ConfigError(`HOST=${config.HOST} needs WECHAT_APPID and WECHAT_SECRET (or WECHAT_APPS): the built-in WeChat simulator only runs on loopback`)
  }
  checkServer(config, !hasAppid, opts.standalone === true)
  checkLifetimes(config)
  const h5 = h5Of(config, production, apps, !hasAppid)
  const refreshCookieTypes = config.REFRESH_COOKIE === 'off' ? [] : config.REFRESH_COOKIE.split(',')
  if (refreshCookieTypes.some((type) => !deviceTypes.includes(type))) throw new ConfigError('REFRESH_COOKIE must be off or name types of DEVICE_TYPES')
  if (config.WORKERS !== '1') {
    // The memory store, a generated secret and the built-in simulator (its secret, its codes) are per process.
    const missing = [hasRedis ? null : 'REDIS_URL', config.JWT_SECRET === undefined ? 'JWT_SECRET' : null,
      // A signing key made at boot is the process's own: the other workers would refuse its tokens.
      config.JWT_ALGORITHM !== 'HS256' && config.JWT_PRIVATE_KEY === undefined ? 'JWT_PRIVATE_KEY' : null,
      hasAppid ? null : 'WECHAT_APPID and WECHAT_SECRET (or a simulator of its own: npm run simulator, WECHAT_API_BASE)'].filter((x) => x !== null)
    if (missing.length > 0) throw new ConfigError(`WORKERS=${config.WORKERS} needs ${missing.join(', ')}: sessions, secrets and WeChat must be shared by the processes`)
  }
  const devDefaults: string[] = []
  const signing = signingOf(config, production, devDefaults)
  if (!hasAppid) devDefaults.push(`no WECHAT_APPID/WECHAT_SECRET/WECHAT_APPS: using the built-in WeChat simulator${h5 !== undefined && h5.account === undefined ? ' (and its official account for H5 login)' : ''}`)
  if (!hasRedis) devDefaults.push(`no REDIS_URL: sessions live in process memory and vanish on restart${redisHint}`)
  if (config.JWT_SECRET === undefined) devDefaults.push('no JWT_SECRET: a random one was generated; tokens die with the process')
  return {
    ...config,
    production,
    apps,
    jwtSecret: config.JWT_SECRET ?? randomBytes(48).toString('base64url'),
    ...(signing !== undefined ? { signing } : {}),
    useSimulator: !hasAppid,
    ...(h5 !== undefined ? { h5 } : {}),
    refreshCookieTypes,
    devDefaults
  }
}

/**
 * The asymmetric signing key and the previous public keys (JWT_ALGORITHM ES256 or EdDSA). Production
 * needs JWT_PRIVATE_KEY; development without it signs with a key made for this process, said at boot.
 * Messages never hold a key.
 */
function signingOf (config: Config, production: boolean, devDefaults: string[]): ResolvedConfig['signing'] {
  const algorithm = config.JWT_ALGORITHM
  if (algorithm === 'HS256') {
    if (config.JWT_PRIVATE_KEY !== undefined || config.JWT_PREVIOUS_PUBLIC_KEYS !== undefined) {
      throw new ConfigError('JWT_PRIVATE_KEY and JWT_PREVIOUS_PUBLIC_KEYS need JWT_ALGORITHM=ES256 or EdDSA (HS256 signs with JWT_SECRET)')
    }
    return undefined
  }
  const parse = <T>(name: string, read: () => T): T => {
    try {
      return read()
    } catch (err) {
      throw new ConfigError(`${name}: ${(err as Error).message}`)
    }
  }
  let privateKey: KeyObject
  if (config.JWT_PRIVATE_KEY !== undefined) {
    privateKey = parse('JWT_PRIVATE_KEY', () => parsePrivateKey(config.JWT_PRIVATE_KEY as string))
  } else if (production) {
    throw new ConfigError(`NODE_ENV=production with JWT_ALGORITHM=${algorithm} requires JWT_PRIVATE_KEY (a key is never made silently in production)`)
  } else {
    privateKey = algorithm === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey : generateKeyPairSync('ed25519').privateKey
    devDefaults.push(`no JWT_PRIVATE_KEY: a ${algorithm} key was made for this process; its tokens and JWKS die with it`)
  }
  const previousPublicKeys = config.JWT_PREVIOUS_PUBLIC_KEYS === undefined ? [] : parse('JWT_PREVIOUS_PUBLIC_KEYS', () => parsePublicKeys(config.JWT_PREVIOUS_PUBLIC_KEYS as string))
  if (!fitsAlgorithm(privateKey, algorithm)) throw new ConfigError(`JWT_PRIVATE_KEY is not ${algorithm === 'ES256' ? 'a P-256 EC' : 'an Ed25519'} key`)
  if (previousPublicKeys.some((k) => !fitsAlgorithm(k, algorithm))) throw new ConfigError(`JWT_PREVIOUS_PUBLIC_KEYS must be ${algorithm} keys`)
  if (previousPublicKeys.length > 5) throw new ConfigError('JWT_PREVIOUS_PUBLIC_KEYS: at most 5 keys')
  return { algorithm, privateKey, previousPublicKeys }
}

/**
 * The Redis settings: one way to reach Redis at most (a client passed in, REDIS_URL, a Cluster or
 * Sentinel), each with what it needs. Whether there is a Redis at all.
 */
function checkRedis (config: Config, hasRedisClient: boolean): boolean {
  // A client passed in wins over REDIS_URL, as it always did (a host reading its environment may have
  // one for its own Redis): the store plugin says REDIS_URL is ignored. Any other pair is refused.
  const ways = [hasRedisClient ? 'a Redis client passed in' : null, config.REDIS_URL !== undefined && !hasRedisClient ? 'REDIS_URL' : null,
    config.REDIS_CLUSTER_NODES !== undefined ? 'REDIS_CLUSTER_NODES' : null, config.REDIS_SENTINELS !== undefined ? 'REDIS_SENTINELS' : null].filter((x) => x !== null)
  if (ways.length > 1) throw new ConfigError(`one way to reach Redis at most: ${ways.join(' and ')} are both set`)
  if ((config.REDIS_SENTINELS === undefined) !== (config.REDIS_SENTINEL_NAME === undefined)) {
    throw new ConfigError('REDIS_SENTINELS and REDIS_SENTINEL_NAME go together: the sentinels, and the name of the master group they watch')
  }
  if (config.REDIS_SENTINELS === undefined && (config.REDIS_NODE_USERNAME !== undefined || config.REDIS_NODE_PASSWORD !== undefined)) {
    throw new ConfigError('REDIS_NODE_USERNAME and REDIS_NODE_PASSWORD are for the data nodes found through REDIS_SENTINELS; with REDIS_URL or REDIS_CLUSTER_NODES put them in the URL')
  }
  return ways.length === 1
}

/**
 * The list of mini programs from the three places it can come from. Messages name the option and
 * the position, never a value: the values hold secrets.
 */
function resolveApps (config: Config, fromOption: unknown): WechatApp[] {
  if ((config.WECHAT_APPID === undefined) !== (config.WECHAT_SECRET === undefined)) {
    throw new ConfigError('WECHAT_APPID and WECHAT_SECRET must be set together')
  }
  const apps: WechatApp[] = []
  if (config.WECHAT_APPID !== undefined && config.WECHAT_SECRET !== undefined) {
    apps.push({ appid: config.WECHAT_APPID, secret: config.WECHAT_SECRET })
  }
  const check = (name: string, value: unknown): void => {
    if (!Value.Check(WechatApps, value)) {
      const first = Value.Errors(WechatApps, value).First()
      throw new ConfigError(`${name} must be a non-empty array of { appid: "wx" + 16 hex digits, secret: 16 to 128 characters }` +
        (first === undefined ? '' : ` (at ${first.path === '' ? 'the top' : first.path}: ${first.message})`))
    }
    apps.push(...(value as WechatApp[]).map(({ appid, secret }) => ({ appid, secret })))
  }
  if (config.WECHAT_APPS !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(config.WECHAT_APPS)
    } catch {
      throw new ConfigError('WECHAT_APPS is not valid JSON')
    }
    check('WECHAT_APPS', parsed)
  }
  if (fromOption !== undefined) check('the apps option', fromOption)
  const seen = new Set<string>()
  for (const { appid } of apps) {
    if (seen.has(appid)) throw new ConfigError(`appid ${appid} is configured twice`)
    seen.add(appid)
  }
  return apps
}
