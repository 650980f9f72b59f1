import { test } from 'tap'
import { loadConfig, resolveConfig } from '../../lib/config.js'
import { withEnv } from '../helper.js'

const strong = 'a-strong-jwt-secret-0123456789-abcdefghijkl'

test('defaults fill every unset value; the environment is read by name', async (t) => {
  const c = loadConfig({ PORT: '8080', PATH: '/usr/bin', RATE_LIMIT_LOGIN_MAX: '' })
  t.equal(c.PORT, 8080, 'coerced from a string')
  t.equal(c.HOST, '127.0.0.1')
  t.equal(c.ACCESS_TOKEN_TTL, 900)
  t.equal(c.REFRESH_TOKEN_TTL, 2592000)
  t.equal(c.RATE_LIMIT_LOGIN_MAX, 10, 'an empty string counts as unset')
  t.equal(c.RATE_LIMIT_REFRESH_MAX, 30)
  t.equal(c.WECHAT_TIMEOUT_MS, 5000)
  t.equal(c.WECHAT_API_BASE, 'https://api.weixin.qq.com')
  t.equal(c.AUTH_PREFIX, '/auth')
  t.notOk('PATH' in c, 'unrelated variables are ignored')
})

test('explicit values win over the environment', async (t) => {
  t.equal(loadConfig({ PORT: '1' }, { PORT: 2 }).PORT, 2)
  t.equal(loadConfig(false, { PORT: '3' }).PORT, 3)
})

test('a bad value refuses to load, naming it', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT/],
    [{ JWT_SECRET: 'short' }, /JWT_SECRET/],
    [{ WECHAT_APPID: 'not-an-appid' }, /WECHAT_APPID/],
    [{ REDIS_URL: 'localhost:6379' }, /REDIS_URL/],
    [{ WECHAT_TIMEOUT_MS: '5' }, /WECHAT_TIMEOUT_MS/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ WECHAT_API_BASE: 'ftp://x' }, /WECHAT_API_BASE/],
    [{ AUTH_PREFIX: 'auth' }, /AUTH_PREFIX/]
  ]
  for (const [env, name] of cases) {
    t.throws(() => loadConfig(env), { code: 'CONFIG_INVALID', message: name }, JSON.stringify(env))
  }
  t.throws(() => loadConfig({ JWT_SECRET: 'short-secret-value' }), { message: /JWT_SECRET/ })
  t.notMatch((() => { try { loadConfig({ JWT_SECRET: 'short-secret-value' }) } catch (e) { return (e as Error).message } return '' })(), /short-secret-value/, 'the value itself is not echoed')
})

test('unknown explicit options are refused (typos must not fall back to defaults)', async (t) => {
  t.throws(() => loadConfig(false, { JWT_SECERT: strong } as never), { code: 'CONFIG_INVALID', message: /JWT_SECERT/ })
})

test('production refuses to run without credentials, Redis and a strong secret', async (t) => {
  const prod = { NODE_ENV: 'production' }
  t.throws(() => resolveConfig(loadConfig(prod), { hasRedisClient: false }),
    { message: /WECHAT_APPID and WECHAT_SECRET \(or WECHAT_APPS\), REDIS_URL, JWT_SECRET/ })
  const full = { ...prod, WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: '0123456789abcdef0123', REDIS_URL: 'redis://r:6379', JWT_SECRET: strong }
  const ok = resolveConfig(loadConfig(full), { hasRedisClient: false })
  t.equal(ok.production, true)
  t.equal(ok.useSimulator, false)
  t.same(ok.devDefaults, [])
  t.equal(ok.jwtSecret, strong)
  const { REDIS_URL: _r, ...noRedis } = full
  t.ok(resolveConfig(loadConfig(noRedis), { hasRedisClient: true }), 'a host Redis client counts as Redis')
  t.throws(() => resolveConfig(loadConfig({ ...full, JWT_SECRET: 'a'.repeat(40) }), { hasRedisClient: false }), { message: /JWT_SECRET is too weak/ })
  t.throws(() => resolveConfig(loadConfig({ ...full, TRUST_PROXY: 'true' }), { hasRedisClient: false }), { message: /TRUST_PROXY=true lets clients choose their IP/ })
  t.ok(resolveConfig(loadConfig({ ...full, TRUST_PROXY: '1', HOST: '0.0.0.0' }), { hasRedisClient: false }), 'a hop count, on any interface, is fine')
})

test('JWT_SECRET_PREVIOUS needs a JWT_SECRET that differs from it, and is not echoed', async (t) => {
  const previous = 'the-previous-jwt-secret-0123456789abcdef'
  t.equal(resolveConfig(loadConfig({ JWT_SECRET: strong, JWT_SECRET_PREVIOUS: previous }), { hasRedisClient: false }).JWT_SECRET_PREVIOUS, previous)
  for (const env of [{ JWT_SECRET_PREVIOUS: previous }, { JWT_SECRET: previous, JWT_SECRET_PREVIOUS: previous }]) {
    const err = (() => { try { resolveConfig(loadConfig(env), { hasRedisClient: false }) } catch (e) { return e as Error } return null })()
    t.match(err, { code: 'CONFIG_INVALID', message: /JWT_SECRET_PREVIOUS needs a JWT_SECRET that differs from it/ })
    t.notMatch(err?.message, /the-previous/, 'the value itself is not echoed')
  }
  t.throws(() => loadConfig({ JWT_SECRET_PREVIOUS: 'short' }), { message: /JWT_SECRET_PREVIOUS/ })
})

test('the simulator never faces a network', async (t) => {
  t.throws(() => resolveConfig(loadConfig({ HOST: '0.0.0.0' }), { hasRedisClient: false }), { message: /HOST=0.0.0.0 needs WECHAT_APPID/ })
  for (const host of ['127.0.0.1', '::1', 'localhost']) t.ok(resolveConfig(loadConfig({ HOST: host }), { hasRedisClient: false }).useSimulator, host)
})

test('development fills in the simulator, memory store and a random secret, and says so', async (t) => {
  const a = resolveConfig(loadConfig({}), { hasRedisClient: false })
  const b = resolveConfig(loadConfig({}), { hasRedisClient: false })
  t.equal(a.useSimulator, true)
  t.equal(a.devDefaults.length, 3)
  t.ok(a.jwtSecret.length >= 32)
  t.not(a.jwtSecret, b.jwtSecret, 'random per process')
  t.throws(() => resolveConfig(loadConfig({ WECHAT_APPID: 'wx0123456789abcdef' }), { hasRedisClient: false }),
    { message: /WECHAT_APPID and WECHAT_SECRET must be set together/ })
})

test('several mini programs: WECHAT_APPID first, then WECHAT_APPS, then the apps option', async (t) => {
  const a = { appid: 'wx000000000000000a', secret: 'secret-of-app-a-000' }
  const b = { appid: 'wx000000000000000b', secret: 'secret-of-app-b-000' }
  const c = { appid: 'wx000000000000000c', secret: 'secret-of-app-c-000' }
  const both = resolveConfig(loadConfig({ WECHAT_APPID: a.appid, WECHAT_SECRET: a.secret, WECHAT_APPS: JSON.stringify([b]) }), { hasRedisClient: false, apps: [c] })
  t.same(both.apps, [a, b, c])
  t.equal(both.useSimulator, false)
  const only = resolveConfig(loadConfig({ WECHAT_APPS: JSON.stringify([b, c]) }), { hasRedisClient: false })
  t.same(only.apps, [b, c], 'WECHAT_APPS alone is enough')
  const prod = { NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', JWT_SECRET: strong }
  t.ok(resolveConfig(loadConfig({ ...prod, WECHAT_APPS: JSON.stringify([b]) }), { hasRedisClient: false }), 'also in production')
  t.ok(resolveConfig(loadConfig(prod), { hasRedisClient: false, apps: [b] }), 'the apps option too')
  t.same(resolveConfig(loadConfig({}), { hasRedisClient: false }).apps, [], 'none: the simulator stands in')

  const refuse = (env: Record<string, string>, apps: unknown, message: RegExp, label: string): void => {
    const err = (() => { try { resolveConfig(loadConfig(env), { hasRedisClient: false, apps }) } catch (e) { return e as Error & { code?: string } } return null })()
    t.equal(err?.code, 'CONFIG_INVALID', label)
    t.match(err?.message, message, label)
    t.notMatch(err?.message, /secret-of|hunter2/, `${label}: no secret in the message`)
  }
  refuse({ WECHAT_APPS: '{nope' }, undefined, /WECHAT_APPS is not valid JSON/, 'bad JSON')
  refuse({ WECHAT_APPS: '[]' }, undefined, /WECHAT_APPS must be a non-empty array/, 'empty')
  refuse({ WECHAT_APPS: JSON.stringify([{ appid: 'wx1', secret: 'hunter2-hunter2-hunter2' }]) }, undefined, /WECHAT_APPS.*\/0\/appid/, 'bad appid')
  refuse({ WECHAT_APPS: JSON.stringify([{ appid: a.appid, secret: 'hunter2' }]) }, undefined, /\/0\/secret/, 'short secret')
  refuse({ WECHAT_APPS: JSON.stringify([{ ...a, extra: 1 }]) }, undefined, /WECHAT_APPS/, 'unknown field')
  refuse({}, { appid: a.appid }, /the apps option must be a non-empty array/, 'not an array')
  refuse({ WECHAT_APPID: a.appid, WECHAT_SECRET: a.secret, WECHAT_APPS: JSON.stringify([{ ...a, secret: 'secret-of-another-0' }]) }, undefined, /appid wx000000000000000a is configured twice/, 'duplicate')
  refuse({ WECHAT_APPID: a.appid }, undefined, /WECHAT_APPID and WECHAT_SECRET must be set together/, 'half a pair')
})

test('nothing is read from process.env unless it is passed in', async (t) => {
  const polluted = { JWT_SECRET: 'the-host-apps-own-secret-0123456789abcdef', PORT: '4567', REDIS_URL: 'redis://10.9.9.9:6379', AUTH_PREFIX: '/host' }
  withEnv(t, polluted)
  for (const [label, config] of [['env false', loadConfig(false)], ['an empty env', loadConfig({})], ['explicit values only', loadConfig(false, { HOST: '::1' })]] as const) {
    t.equal(config.JWT_SECRET, undefined, `${label}: no JWT_SECRET`)
    t.equal(config.PORT, 3000, `${label}: default PORT`)
    t.equal(config.REDIS_URL, undefined, `${label}: no REDIS_URL`)
    t.equal(config.AUTH_PREFIX, '/auth', `${label}: default AUTH_PREFIX`)
  }
  t.equal(loadConfig(process.env).JWT_SECRET, polluted.JWT_SECRET, 'read when process.env is passed')
})

test('device types: the default and the exclusive ones must be configured types', async (t) => {
  const resolve = (env: Record<string, string>) => () => resolveConfig(loadConfig(env), { hasRedisClient: false })
  t.same(loadConfig({}).DEVICE_TYPES.split(','), ['mp', 'app', 'h5', 'web', 'pc'])
  t.doesNotThrow(resolve({ EXCLUSIVE_DEVICE_TYPES: 'mp,app' }))
  t.throws(resolve({ DEVICE_TYPE_DEFAULT: 'tv' }), { code: 'CONFIG_INVALID', message: /DEVICE_TYPE_DEFAULT/ })
  t.throws(resolve({ EXCLUSIVE_DEVICE_TYPES: 'mp,tv' }), { code: 'CONFIG_INVALID', message: /EXCLUSIVE_DEVICE_TYPES/ })
  t.throws(() => loadConfig({ DEVICE_TYPES: 'MP' }), { code: 'CONFIG_INVALID', message: /DEVICE_TYPES/ })
  t.throws(() => loadConfig({ EXCLUSIVE_MODE: 'kick' }), { code: 'CONFIG_INVALID', message: /EXCLUSIVE_MODE/ })
  t.throws(() => loadConfig({ MAX_SESSIONS_PER_USER: '17' }), { code: 'CONFIG_INVALID', message: /MAX_SESSIONS_PER_USER/ })
})

test('the admin API: ADMIN_PORT and a strong ADMIN_TOKEN together, in every mode, on a port of its own; the token is never echoed', async (t) => {
  const token = 'admin-token-0123456789-abcdefghijklmnop'
  const production = { NODE_ENV: 'production', WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'a-secret-of-16-chars', REDIS_URL: 'redis://r:6379', JWT_SECRET: strong }
  const resolve = (env: Record<string, string>) => () => resolveConfig(loadConfig(env), { hasRedisClient: false })
  const off = resolve({})()
  t.equal(off.ADMIN_PORT, undefined, 'off by default')
  t.equal(off.ADMIN_HOST, '127.0.0.1', 'loopback by default')
  t.match(resolve({ ADMIN_PORT: '3100', ADMIN_TOKEN: token })(), { ADMIN_PORT: 3100, ADMIN_HOST: '127.0.0.1', ADMIN_TOKEN: token })
  t.match(resolve({ ...production, ADMIN_PORT: '3100', ADMIN_TOKEN: token })(), { production: true, ADMIN_PORT: 3100 })
  t.doesNotThrow(resolve({ PORT: '0', ADMIN_PORT: '0', ADMIN_TOKEN: token }), 'two random ports differ')
  const refusals: Array<[Record<string, string>, RegExp]> = [
    [{ ADMIN_PORT: '3100' }, /ADMIN_PORT needs an ADMIN_TOKEN/],
    [{ ...production, ADMIN_PORT: '3100' }, /ADMIN_PORT needs an ADMIN_TOKEN/],
    [{ ADMIN_TOKEN: token }, /ADMIN_TOKEN is set but ADMIN_PORT is not/],
    [{ ADMIN_PORT: '3100', ADMIN_TOKEN: 'ab'.repeat(20) }, /ADMIN_TOKEN is too weak/],
    // A secret file's trailing newline, a space, a letter beyond ASCII: no bearer header carries them.
    [{ ADMIN_PORT: '3100', ADMIN_TOKEN: `${token}\n` }, /ADMIN_TOKEN must be 32 to 256 printable ASCII characters, no space or line break/],
    [{ ADMIN_PORT: '3100', ADMIN_TOKEN: `${token} x` }, /ADMIN_TOKEN must be 32 to 256 printable ASCII/],
    [{ ADMIN_PORT: '3100', ADMIN_TOKEN: `${token}é` }, /ADMIN_TOKEN must be 32 to 256 printable ASCII/],
    [{ PORT: '3100', ADMIN_PORT: '3100', ADMIN_TOKEN: token }, /ADMIN_PORT must differ from PORT/]
  ]
  for (const [env, message] of refusals) {
    const err = t.throws(resolve(env), { code: 'CONFIG_INVALID', message })
    t.notMatch(String((err as Error | undefined)?.message), token, 'the token is not in the message')
  }
  t.throws(() => loadConfig({ ADMIN_PORT: '3100', ADMIN_TOKEN: 'too-short' }), { code: 'CONFIG_INVALID', message: /ADMIN_TOKEN/ })
  t.throws(() => loadConfig({ ADMIN_PORT: '65536' }), { code: 'CONFIG_INVALID', message: /ADMIN_PORT/ })
})

test('WORKERS: more than one process needs what they must share (Redis, the JWT secret, WeChat)', async (t) => {
  const resolve = (values: Record<string, string>) => resolveConfig(loadConfig(false, values), { hasRedisClient: false })
  t.throws(() => resolve({ WORKERS: '2' }), { code: 'CONFIG_INVALID', message: /WORKERS=2 needs REDIS_URL, JWT_SECRET, WECHAT_APPID and WECHAT_SECRET/ })
  t.throws(() => resolve({ WORKERS: 'auto', REDIS_URL: 'redis://127.0.0.1:1', JWT_SECRET: 'a-long-and-varied-secret-0123456789abcdef' }), { message: /WORKERS=auto needs WECHAT_APPID and WECHAT_SECRET/ })
  t.throws(() => loadConfig(false, { WORKERS: '0' }), { code: 'CONFIG_INVALID' }, 'at least one')
  t.throws(() => loadConfig(false, { WORKERS: 'many' }), { code: 'CONFIG_INVALID' })
  t.equal(resolve({ WORKERS: '2', REDIS_URL: 'redis://127.0.0.1:1', JWT_SECRET: 'a-long-and-varied-secret-0123456789abcdef', WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'secret-0123456789abcdef' }).WORKERS, '2')
  // An ES256 or EdDSA key made at boot would be each worker's own: a token refused by the others.
  const shared = { REDIS_URL: 'redis://127.0.0.1:1', JWT_SECRET: 'a-long-and-varied-secret-0123456789abcdef', WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'secret-0123456789abcdef' }
  for (const JWT_ALGORITHM of ['ES256', 'EdDSA']) {
    t.throws(() => resolve({ WORKERS: '2', JWT_ALGORITHM, ...shared }), { code: 'CONFIG_INVALID', message: /configuration: WORKERS=2 needs JWT_PRIVATE_KEY: / }, JWT_ALGORITHM)
    t.doesNotThrow(() => resolve({ WORKERS: '1', JWT_ALGORITHM, ...shared }), `${JWT_ALGORITHM} with one process: a key of its own is fine in development`)
  }
  t.equal(resolve({}).WORKERS, '1', 'one by default')
})

test('H5 login: an official account with its return pages, or the simulator\'s in development; off otherwise', async (t) => {
  const mp = { WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: '0123456789abcdef0123' }
  const oa = { WECHAT_OA_APPID: 'wx00000000000000a1', WECHAT_OA_SECRET: 'an-official-account-secret-0123' }
  const resolve = (env: Record<string, string>) => resolveConfig(loadConfig(env), { hasRedisClient: false })
  const messageOf = (env: Record<string, string>): string => { try { resolve(env) } catch (e) { return (e as Error).message } return '' }

  t.equal(resolve(mp).h5, undefined, 'off without an official account')
  const on = resolve({ ...mp, ...oa, H5_RETURN_URLS: 'https://h5.example.com/app/, https://m.example.com/login' })
  t.same(on.h5?.account, { appid: oa.WECHAT_OA_APPID, secret: oa.WECHAT_OA_SECRET })
  t.same(on.h5?.returnUrls.map(String), ['https://h5.example.com/app/', 'https://m.example.com/login'])
  t.equal(resolve({}).h5, undefined, 'off in development too unless asked')
  t.notMatch(resolve({}).devDefaults[0], /official account/)
  const dev = resolve({ H5_RETURN_URLS: 'http://localhost:3000/' })
  t.ok(dev.h5 !== undefined && dev.h5.account === undefined, 'development with the simulator: H5_RETURN_URLS alone, the simulator\'s official account stands in')
  t.same(dev.h5?.returnUrls.map(String), ['http://localhost:3000/'])
  t.match(dev.devDefaults[0], /simulator \(and its official account for H5 login\)/, 'and says so')

  t.match(messageOf({ ...mp, WECHAT_OA_APPID: oa.WECHAT_OA_APPID }), /WECHAT_OA_APPID and WECHAT_OA_SECRET must be set together/)
  t.match(messageOf({ ...mp, ...oa }), /WECHAT_OA_APPID needs H5_RETURN_URLS/)
  t.match(messageOf({ ...mp, H5_RETURN_URLS: 'https://h5.example.com/' }), /H5_RETURN_URLS needs WECHAT_OA_APPID and WECHAT_OA_SECRET/)
  t.match(messageOf({ ...mp, ...oa, WECHAT_OA_APPID: mp.WECHAT_APPID, H5_RETURN_URLS: 'https://h5.example.com/' }), /WECHAT_OA_APPID is a mini program's appid/)
  t.match(messageOf({ ...mp, ...oa, H5_RETURN_URLS: 'h5.example.com/app' }), /H5_RETURN_URLS: entry 1 is not an absolute URL/)
  t.match(messageOf({ ...mp, ...oa, H5_RETURN_URLS: 'https://a.example.com/,https://b.example.com/?next=x' }), /H5_RETURN_URLS: entry 2 must have no credentials, query or fragment/)
  t.match(messageOf({ ...mp, ...oa, H5_RETURN_URLS: 'javascript:alert(1)' }), /H5_RETURN_URLS: entry 1 must be https/)
  // An origin alone would read as its `/`: every page of the origin, where the operator may have meant its home page only.
  for (const bare of ['https://h5.example.com', 'https://h5.example.com:8443', 'https://a.example.com/,HTTPS://h5.example.com']) {
    t.match(messageOf({ ...mp, ...oa, H5_RETURN_URLS: bare }), /H5_RETURN_URLS: entry \d has no path: end it with \/ to allow every page of its origin, or name the page/, bare)
  }
  t.ok(resolve({ ...mp, ...oa, H5_RETURN_URLS: 'https://h5.example.com/,https://m.example.com/login' }).h5, 'an origin with its / is every page of it, as documented')
  t.notMatch(messageOf({ ...mp, ...oa, H5_RETURN_URLS: 'https://secret-host.example.com/?x=1' }), /secret-host/, 'a value is never echoed')
  t.match(messageOf({ ...mp, ...oa, WECHAT_OA_SECRET: 'short' }), /WECHAT_OA_SECRET/)
  t.match(messageOf({ ...mp, ...oa, H5_STATE_TTL: '5' }), /H5_STATE_TTL/)
  t.ok(resolve({ ...mp, ...oa, H5_RETURN_URLS: 'http://192.168.1.5:8080/h5/' }).h5, 'http in development (a phone on the LAN)')

  const prod = { NODE_ENV: 'production', ...mp, ...oa, REDIS_URL: 'redis://r:6379', JWT_SECRET: strong, H5_RETURN_URLS: 'https://h5.example.com/' }
  t.ok(resolve(prod).h5)
  t.match(messageOf({ ...prod, H5_RETURN_URLS: 'http://h5.example.com/' }), /H5_RETURN_URLS: entry 1 must be https:\/\/$/, 'production: https only')
  t.match(messageOf({ ...prod, WECHAT_OA_AUTHORIZE_URL: 'http://open.example.com/authorize' }), /requires an https:\/\/ WECHAT_OA_AUTHORIZE_URL/)
})

test('cookie mode: REFRESH_COOKIE names device types of DEVICE_TYPES, or is off', async (t) => {
  const resolve = (env: Record<string, string>) => resolveConfig(loadConfig(env), { hasRedisClient: false })
  t.same(resolve({}).refreshCookieTypes, [], 'off by default')
  t.same(resolve({ REFRESH_COOKIE: 'web,h5' }).refreshCookieTypes, ['web', 'h5'])
  t.throws(() => resolve({ REFRESH_COOKIE: 'web,tv' }), { code: 'CONFIG_INVALID', message: /REFRESH_COOKIE must be off or name types of DEVICE_TYPES/ })
  t.throws(() => resolve({ REFRESH_COOKIE: 'off,web' }), { code: 'CONFIG_INVALID', message: /REFRESH_COOKIE/ })
})
