// The checks the configuration's schema cannot say (lib/config-checks.ts), through loadConfig and
// resolveConfig as the standalone server and the plugin run them: each refusal names its key and
// repeats no secret; what is meant keeps working.
import { test } from 'tap'
import { loadConfig, resolveConfig } from '../../lib/config.js'

const resolve = (env: Record<string, string>): ReturnType<typeof resolveConfig> => resolveConfig(loadConfig(env), { hasRedisClient: false, standalone: true })

test('numbers are decimal digits: the schema\'s coercion would read a blank as 0 and hex as a number', async (t) => {
  for (const [key, value] of [['PORT', ' '], ['PORT', '0x1074'], ['PORT', '1e3'], ['REFRESH_GRACE_SECONDS', '\t'], ['MAX_EVENT_LOOP_DELAY_MS', ' 0'], ['REDIS_WAIT_REPLICAS', '0b1'], ['ACCESS_TOKEN_TTL', '900.0']] as const) {
    t.throws(() => loadConfig({ [key]: value }), { code: 'CONFIG_INVALID', message: `Invalid configuration: ${key} must be a whole number in decimal digits` }, `${key}=${JSON.stringify(value)}`)
  }
  t.throws(() => loadConfig(false, { PORT: ' ' as unknown as number }), { message: 'Invalid configuration: PORT must be a whole number in decimal digits' }, 'a string in the plugin\'s config too')
  t.equal(loadConfig({ PORT: '4212' }).PORT, 4212)
  t.equal(loadConfig({ PORT: '' }).PORT, 3000, 'an empty string is still unset')
  t.equal(loadConfig(false, { PORT: 4213 }).PORT, 4213, 'a number in the plugin\'s config')
  t.throws(() => loadConfig({ PORT: '-1' }), { message: /PORT/ }, 'a negative number: the schema\'s range')
})

test('NODE_ENV: production exactly; one that looks like it is refused, other modes run as development', async (t) => {
  for (const value of ['Production', 'PRODUCTION', 'prod', ' production', 'production ', 'production\n']) {
    t.throws(() => resolve({ NODE_ENV: value }), { code: 'CONFIG_INVALID', message: /^Invalid configuration: NODE_ENV=.* is not production: write production exactly/ }, JSON.stringify(value))
  }
  for (const value of ['development', 'test', 'staging']) t.equal(resolve({ NODE_ENV: value }).production, false, value)
})

test('TRUST_PROXY: true, false, a number of proxies, or a list of addresses, CIDRs and range names', async (t) => {
  for (const value of ['TRUE', 'yes', '-1', ' 1', '1 ', '1,', '10.0.0.0/33', '::1/129', '10.0.0.1/8/8', 'proxy.internal', '10.0.0.0/255.0.0.1x', '0.0.0.0/0', '::/0', '10.0.0.0/255.0.255.0', '10.0.0.0/0.0.0.0']) {
    t.throws(() => resolve({ TRUST_PROXY: value }), { code: 'CONFIG_INVALID', message: /^Invalid configuration: TRUST_PROXY must be true, false, a number of proxies/ }, JSON.stringify(value))
  }
  for (const value of ['false', '1', '2', '10.0.0.1', '10.0.0.0/8, 192.168.0.0/16', '::1', 'fd00::/8', 'loopback,uniquelocal', '10.0.0.0/255.0.0.0']) {
    t.equal(resolve({ TRUST_PROXY: value }).TRUST_PROXY, value, JSON.stringify(value))
  }
})

test('REQUEST_ID_HEADER: never a credential, a header that frames the message or one the gateway answers', async (t) => {
  for (const name of ['cookie', 'Authorization', 'proxy-authorization', 'set-cookie', 'transfer-encoding', 'content-length', 'content-type', 'connection', 'host', 'cache-control', 'www-authenticate', 'x-auth-request-user', 'remote-user', 'x-ratelimit-remaining', 'x-forwarded-for', 'x-wechat-auth-csrf', 'location', 'x-api-key', 'x-auth-token', 'x-csrf-token', 'x-amz-security-token']) {
    t.throws(() => resolve({ REQUEST_ID_HEADER: name }), { code: 'CONFIG_INVALID', message: `Invalid configuration: REQUEST_ID_HEADER cannot be ${name.toLowerCase()}: a request's id is logged and answered, so not a credential, a header that frames the message or one the gateway answers itself (x-request-id, x-correlation-id...)` }, name)
  }
  for (const name of ['x-request-id', 'X-Correlation-Id', 'x-amzn-trace-id', 'request-id', 'x-trace-id']) {
    t.equal(resolve({ REQUEST_ID_HEADER: name }).REQUEST_ID_HEADER, name, name)
  }
})

test('HTTP deadlines: the headers\' not beyond the whole request\'s (Node refuses it, naming no key)', async (t) => {
  t.throws(() => resolve({ HTTP_REQUEST_TIMEOUT_MS: '5000' }), { code: 'CONFIG_INVALID', message: /^Invalid configuration: HTTP_HEADERS_TIMEOUT_MS must not exceed HTTP_REQUEST_TIMEOUT_MS/ }, 'the request\'s below the headers\' default')
  t.ok(resolve({ HTTP_REQUEST_TIMEOUT_MS: '5000', HTTP_HEADERS_TIMEOUT_MS: '5000' }), 'equal is fine')
})

test('lifetimes: an access token never outlives its session (idle or at its age)', async (t) => {
  t.throws(() => resolve({ ACCESS_TOKEN_TTL: '120', REFRESH_TOKEN_TTL: '60' }), { code: 'CONFIG_INVALID', message: /^Invalid configuration: ACCESS_TOKEN_TTL must not exceed REFRESH_TOKEN_TTL/ })
  t.throws(() => resolve({ ACCESS_TOKEN_TTL: '3600', SESSION_MAX_AGE: '600' }), { code: 'CONFIG_INVALID', message: /^Invalid configuration: ACCESS_TOKEN_TTL must not exceed SESSION_MAX_AGE/ })
  t.ok(resolve({ ACCESS_TOKEN_TTL: '60', REFRESH_TOKEN_TTL: '60', SESSION_MAX_AGE: '60' }), 'equal is fine')
})

test('listeners: the admin API and the metrics not on the simulator\'s port', async (t) => {
  const token = 'an-admin-token-0123456789-abcdefghijkl'
  t.throws(() => resolve({ PORT: '3000', ADMIN_PORT: '3001', ADMIN_TOKEN: token }), { message: 'Invalid configuration: ADMIN_PORT is the port the built-in WeChat simulator takes (WECHAT_SIMULATOR_PORT, or PORT + 1): choose another' })
  t.throws(() => resolve({ WECHAT_SIMULATOR_PORT: '4000', ADMIN_PORT: '4000', ADMIN_TOKEN: token }), { message: /^Invalid configuration: ADMIN_PORT is the port the built-in WeChat simulator takes/ })
  t.throws(() => resolve({ PORT: '3000', METRICS_PORT: '3001' }), { message: /^Invalid configuration: METRICS_PORT is the port the built-in WeChat simulator takes/ })
  t.ok(resolve({ PORT: '3000', ADMIN_PORT: '3002', ADMIN_TOKEN: token }), 'another port')
  t.ok(resolve({ PORT: '3000', ADMIN_PORT: '3001', ADMIN_TOKEN: token, WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'a-secret-of-sixteen+' }), 'no simulator: its port is free')
})

test('Redis URLs: a password with a raw @ or # would name another host, a piece of it, in every connection error', async (t) => {
  const secret = 'Kq@Vz#Wm'
  const cases: Array<[string, string]> = [
    ['REDIS_URL', `redis://:${secret}@redis.internal:6379`],
    ['REDIS_URL', 'redis://user:pa@ss@redis.internal:6379'],
    ['REDIS_URL', 'redis://'],
    ['REDIS_CLUSTER_NODES', `redis://a:6379,redis://:${secret}@b:6379`],
    ['REDIS_SENTINELS', `redis://:${secret}@s1:26379`]
  ]
  for (const [key, value] of cases) {
    const env = { [key]: value, ...(key === 'REDIS_SENTINELS' ? { REDIS_SENTINEL_NAME: 'master' } : {}) }
    const err = t.throws(() => resolve(env), { code: 'CONFIG_INVALID', message: `Invalid configuration: ${key}: a URL without a host, or whose password holds a raw @ or #: percent-encode the user and password (encodeURIComponent)` }, value) as Error
    t.notMatch(err.message, /Kq|Vz|Wm/, 'no piece of the password')
  }
  t.ok(resolve({ REDIS_URL: `redis://:${encodeURIComponent(secret)}@redis.internal:6379/2` }), 'percent-encoded')
  t.ok(resolve({ REDIS_CLUSTER_NODES: 'redis://a:6379,rediss://user:pw@b:6380' }))
})

test('REDIS_WAIT_REPLICAS: with Redis, and its timeout under half the store\'s deadline', async (t) => {
  t.throws(() => resolve({ REDIS_WAIT_REPLICAS: '1' }), { message: /REDIS_WAIT_REPLICAS needs Redis/ })
  t.throws(() => resolve({ REDIS_URL: 'redis://r:6379', REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '500' }), { message: /REDIS_WAIT_TIMEOUT_MS must be under half of STORE_TIMEOUT_MS/ })
  t.ok(resolve({ REDIS_URL: 'redis://r:6379', REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '499' }))
  t.ok(resolve({ REDIS_WAIT_TIMEOUT_MS: '5000' }), 'no wait: its timeout is not read')
})

test('the standalone server\'s own HTTP settings are checked by it only: a host\'s plugin takes what its server does', async (t) => {
  const config = loadConfig({ TRUST_PROXY: 'TRUE', REQUEST_ID_HEADER: 'cookie', HTTP_REQUEST_TIMEOUT_MS: '5000' })
  t.ok(resolveConfig(config, { hasRedisClient: false }), 'the plugin in a host app')
  t.throws(() => resolveConfig(config, { hasRedisClient: false, standalone: true }), { code: 'CONFIG_INVALID' }, 'the standalone server')
})

test('an environment value the plugin\'s config overrides is not read, nor refused', async (t) => {
  t.equal(loadConfig({ PORT: ' ' }, { PORT: 4000 }).PORT, 4000)
  t.throws(() => loadConfig({ PORT: '4000' }, { PORT: '0x10' as unknown as number }), { message: /PORT must be a whole number in decimal digits/ }, 'the config\'s own is')
})

test('REDIS_URL is one URL: a comma in its password is no list', async (t) => {
  t.equal(resolve({ REDIS_URL: 'redis://:a,b@redis.internal:6379' }).REDIS_URL, 'redis://:a,b@redis.internal:6379')
  t.ok(resolve({ REDIS_URL: 'redis://[::1]:6379' }), 'an IPv6 host')
  t.ok(resolve({ REDIS_URL: 'redis://user%40corp:pw@redis.internal:6379' }), 'an @ percent-encoded in the user')
})

test('a value outside a choice is refused with the choices, once, not once per choice', async (t) => {
  t.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), { message: 'Invalid configuration: env/LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent' })
  t.throws(() => loadConfig({ JWT_ALGORITHM: 'RS256', PORT: '70000' }), { message: 'Invalid configuration: env/PORT must be <= 65535, env/JWT_ALGORITHM must be one of HS256, ES256, EdDSA' })
  t.throws(() => loadConfig({ JWT_SECRET: 'a-secret-too-short' }), { message: 'Invalid configuration: env/JWT_SECRET must NOT have fewer than 32 characters' }, 'other refusals as Ajv says them, the value never')
})

test('JWT_ISSUER: 1 to 256 printable ASCII characters, so that the largest token stays verifiable', async (t) => {
  t.throws(() => resolve({ JWT_ISSUER: 'x'.repeat(257) }), { code: 'CONFIG_INVALID', message: /JWT_ISSUER/ })
  t.throws(() => resolve({ JWT_ISSUER: 'line\nbreak' }), { code: 'CONFIG_INVALID', message: /JWT_ISSUER/ })
  t.ok(resolve({ JWT_ISSUER: 'https://auth.example.com/' }))
})
