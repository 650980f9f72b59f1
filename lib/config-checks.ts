// Checks of the configuration that its schema cannot say, for keys of their own or of the standalone
// server (resolveConfig, config.ts, runs them): a value the schema takes but that would mean something
// else than it seems (a NODE_ENV like production that is not, a TRUST_PROXY the proxy list would read
// as an address), or that would break the server or leak through it. Messages name the key, and never
// repeat a value that may be secret.
import { isIP } from 'node:net'
import { ADMIN_TOKEN_RULE, adminTokenProblem } from './admin-schemas.js'
import { ConfigError } from './errors.js'
import { ConfigSchema, type Config } from './schemas.js'

/**
 * NODE_ENV: `production` exactly, or another mode. One that looks like production (`Production`,
 * `prod`, ` production`) would run the development defaults where production was meant.
 */
export function checkMode (nodeEnv: string): void {
  if (nodeEnv !== 'production' && /^\s*prod/i.test(nodeEnv)) {
    throw new ConfigError(`NODE_ENV=${JSON.stringify(nodeEnv)} is not production: write production exactly (anything else runs the development defaults)`)
  }
}

/** proxy-addr's names for address ranges, which TRUST_PROXY's list may hold too. */
const RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])

/** One entry of TRUST_PROXY's list: an address, a CIDR, or a range's name. */
function isProxyEntry (entry: string): boolean {
  if (RANGE_NAMES.has(entry)) return true
  const [address = '', prefix, ...more] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || more.length > 0) return false
  if (prefix === undefined) return true
  // A prefix length of 1 or more, or (IPv4) a netmask as proxy-addr takes it: contiguous, not 0.0.0.0.
  if (/^\d{1,3}$/.test(prefix)) return Number(prefix) >= 1 && Number(prefix) <= (family === 4 ? 32 : 128)
  return family === 4 && isIP(prefix) === 4 && isNetmask(prefix)
}

/** A dotted IPv4 netmask proxy-addr takes: ones then zeros, at least one one. */
function isNetmask (mask: string): boolean {
  const bits = mask.split('.').reduce((n, byte) => n * 256 + Number(byte), 0)
  const zeros = 2 ** 32 - 1 - bits // the host part: ones only, from the right
  return bits !== 0 && (zeros & (zeros + 1)) === 0
}

/**
 * Headers a request id must not be taken from or answered in: credentials (the id is in every log
 * line and echoed), the message's framing, and what the gateway answers itself.
 */
const NOT_AN_ID = /^(authorization|proxy-authori[sz]ation|cookie|set-cookie|host|content-.*|transfer-encoding|connection|keep-alive|proxy-connection|upgrade|te|trailer|expect|cache-control|pragma|expires|vary|location|retry-after|www-authenticate|proxy-authenticate|strict-transport-security|referrer-policy|x-content-type-options|x-frame-options|access-control-.*|x-ratelimit-.*|x-auth-request-.*|remote-(user|groups)|x-wechat-auth-.*|forwarded|x-forwarded-.*|x-real-ip|date|server|etag|last-modified|age)$/

/** A header whose name says it carries a credential (x-api-key, x-auth-token, x-csrf-token...). */
const CREDENTIAL_NAME = /key|token|secret|auth|session|csrf|sig|pass|cookie|jwt|bearer/

/**
 * The standalone server's keys: its listeners' ports, always (the plugin's admin and metrics options
 * read them); with `standalone`, its headers and proxies and its deadlines, which configure its own
 * Fastify and Node server only (server.ts resolves the configuration so before the plugin does).
 */
export function checkServer (config: Config, withSimulator: boolean, standalone: boolean): void {
  checkAdmin(config)
  checkMetrics(config)
  // In development the simulator takes WECHAT_SIMULATOR_PORT, or PORT + 1: not another listener's too.
  const simulatorPort = withSimulator ? config.WECHAT_SIMULATOR_PORT ?? (config.PORT + 1) % 65536 : undefined
  for (const key of ['METRICS_PORT', 'ADMIN_PORT'] as const) {
    if (config[key] !== undefined && config[key] !== 0 && config[key] === simulatorPort) {
      throw new ConfigError(`${key} is the port the built-in WeChat simulator takes (WECHAT_SIMULATOR_PORT, or PORT + 1): choose another`)
    }
  }
  // The rest configures the standalone server's Fastify and Node server; a host's own are its own.
  if (!standalone) return
  const idHeader = config.REQUEST_ID_HEADER.toLowerCase()
  if (NOT_AN_ID.test(idHeader) || CREDENTIAL_NAME.test(idHeader)) {
    throw new ConfigError(`REQUEST_ID_HEADER cannot be ${idHeader}: a request's id is logged and answered, so not a credential, a header that frames the message or one the gateway answers itself (x-request-id, x-correlation-id...)`)
  }
  const trust = config.TRUST_PROXY
  if (!/^(true|false|\d+)$/.test(trust) && !trust.split(',').map((s) => s.trim()).every(isProxyEntry)) {
    throw new ConfigError('TRUST_PROXY must be true, false, a number of proxies (1) or a comma-separated list of their addresses or CIDRs (10.0.0.0/8, ::1, loopback)')
  }
  if (config.HTTP_HEADERS_TIMEOUT_MS > config.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('HTTP_HEADERS_TIMEOUT_MS must not exceed HTTP_REQUEST_TIMEOUT_MS: the headers are part of the request (defaults 10000 and 30000)')
  }
}

/**
 * The standalone server's admin API: on only with both ADMIN_PORT and ADMIN_TOKEN, in every mode (a
 * generated token could only be used by logging it), on a port of its own.
 */
function checkAdmin ({ ADMIN_PORT, ADMIN_TOKEN, PORT }: Config): void {
  if (ADMIN_PORT !== undefined && ADMIN_TOKEN === undefined) throw new ConfigError(`ADMIN_PORT needs an ADMIN_TOKEN (${ADMIN_TOKEN_RULE})`)
  if (ADMIN_TOKEN !== undefined && ADMIN_PORT === undefined) throw new ConfigError('ADMIN_TOKEN is set but ADMIN_PORT is not: the admin API would not listen')
  const problem = ADMIN_TOKEN === undefined ? undefined : adminTokenProblem(ADMIN_TOKEN)
  if (problem !== undefined) throw new ConfigError(`ADMIN_TOKEN ${problem}`)
  if (ADMIN_PORT !== undefined && ADMIN_PORT !== 0 && ADMIN_PORT === PORT) throw new ConfigError('ADMIN_PORT must differ from PORT: the admin API has a listener of its own')
}

/** The standalone server's metrics listener (METRICS_PORT): a port of its own. */
function checkMetrics ({ METRICS_PORT, ADMIN_PORT, PORT }: Config): void {
  if (METRICS_PORT === undefined || METRICS_PORT === 0) return
  if (METRICS_PORT === PORT) throw new ConfigError('METRICS_PORT must differ from PORT: the metrics have a listener of their own')
  if (METRICS_PORT === ADMIN_PORT) throw new ConfigError('METRICS_PORT must differ from ADMIN_PORT')
}

/**
 * Lifetimes: an access token within its session's. One that outlived the session (idle for
 * REFRESH_TOKEN_TTL, or SESSION_MAX_AGE old) was refused as revoked before its own expiry, and the
 * client could not refresh it: it had to log in again, the configuration promising otherwise.
 */
export function checkLifetimes ({ ACCESS_TOKEN_TTL, REFRESH_TOKEN_TTL, SESSION_MAX_AGE }: Config): void {
  if (ACCESS_TOKEN_TTL > REFRESH_TOKEN_TTL) throw new ConfigError('ACCESS_TOKEN_TTL must not exceed REFRESH_TOKEN_TTL: an access token would outlive its idle session')
  if (ACCESS_TOKEN_TTL > SESSION_MAX_AGE) throw new ConfigError('ACCESS_TOKEN_TTL must not exceed SESSION_MAX_AGE: an access token would outlive its session')
}

/**
 * Redis' URLs and the replica wait. A password with a raw `@` or `#` (not percent-encoded) makes the
 * URL name another host, a piece of the password, which the connection's error would then log.
 */
export function checkRedisSettings (config: Config, hasRedis: boolean): void {
  for (const key of ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'] as const) {
    const value = config[key]
    if (value === undefined) continue
    // REDIS_URL is one URL (a comma may be in its password); the others are lists.
    for (const url of key === 'REDIS_URL' ? [value] : value.split(',')) {
      const authority = url.replace(/^rediss?:\/\//, '').split('/')[0] ?? ''
      if (url.includes('#') || authority.split('@').length > 2 || hostOf(url) === '') {
        throw new ConfigError(`${key}: a URL without a host, or whose password holds a raw @ or #: percent-encode the user and password (encodeURIComponent)`)
      }
    }
  }
  if (config.REDIS_WAIT_REPLICAS === 0) return
  if (!hasRedis) throw new ConfigError('REDIS_WAIT_REPLICAS needs Redis (REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS): the memory store has no replicas')
  // A write, then a WAIT that may itself wait for the one before it: both within STORE_TIMEOUT_MS.
  if (2 * config.REDIS_WAIT_TIMEOUT_MS >= config.STORE_TIMEOUT_MS) throw new ConfigError('REDIS_WAIT_TIMEOUT_MS must be under half of STORE_TIMEOUT_MS: a write waits for replicas within the store\'s deadline')
}

const hostOf = (url: string): string => { try { return new URL(url).hostname } catch { return '' } }

export type SchemaError = Error & { errors?: Array<{ instancePath: string, keyword: string, message?: string }> }

/**
 * The schema's refusal, one phrase per key: a choice among values says which ("must be one of ..."),
 * where Ajv says "must be equal to constant" once per value, then "must match a schema in anyOf".
 */
export function schemaMessage (err: SchemaError): string {
  if (err.errors === undefined) return err.message
  const phrases = new Map<string, string>()
  for (const { instancePath, keyword, message = 'is invalid' } of err.errors) {
    const key = instancePath.replace(/^\//, '')
    const choices = (ConfigSchema.properties as Record<string, { anyOf?: Array<{ const?: unknown }> }>)[key]?.anyOf?.map((s) => s.const)
    if (keyword === 'const' || keyword === 'anyOf') {
      if (choices?.every((c) => typeof c === 'string') === true) phrases.set(key, `must be one of ${choices.join(', ')}`)
    } else if (!phrases.has(key)) phrases.set(key, message)
  }
  return [...phrases].map(([key, phrase]) => `env/${key} ${phrase}`).join(', ')
}
