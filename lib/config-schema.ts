// The configuration's schema, by the names of the environment variables (part of lib/schemas.ts,
// which re-exports it). Types are derived with Static<>, never written a second time.
import { Type, type Static } from '@sinclair/typebox'

const LogLevel = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))
)

/**
 * Keys of the standalone server's own process and listeners (server.ts, workers.ts). The plugin in a
 * host app has no use for them: read from an `env` it is given (a host's process.env, whose LOG_LEVEL,
 * WORKERS or ADMIN_TOKEN are the host's own), they are left out, not validated.
 */
export const STANDALONE_KEYS: ReadonlySet<string> = new Set(['LOG_LEVEL', 'TRUST_PROXY', 'HTTP_HEADERS_TIMEOUT_MS', 'HTTP_REQUEST_TIMEOUT_MS',
  'HTTP_KEEP_ALIVE_TIMEOUT_MS', 'WORKERS', 'MAX_EVENT_LOOP_DELAY_MS', 'REQUEST_ID_HEADER', 'ADMIN_PORT', 'ADMIN_HOST', 'ADMIN_TOKEN', 'METRICS_PORT', 'METRICS_HOST'])

/**
 * The configuration, by the names of the environment variables. The standalone server reads it
 * from the environment; a host app passes the same names in the plugin's `config` option.
 */
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  LOG_LEVEL: Type.Unsafe<Static<typeof LogLevel>>({ ...LogLevel, default: 'info' }),
  // "true"/"false", a hop count, or a comma-separated list of trusted addresses/CIDRs.
  TRUST_PROXY: Type.String({ default: 'false' }),
  WECHAT_APPID: Type.Optional(Type.String({ pattern: '^wx[0-9a-f]{16}$' })),
  WECHAT_SECRET: Type.Optional(Type.String({ minLength: 16, maxLength: 128 })),
  // Several mini programs: a JSON array of { appid, secret } (see WechatApps below).
  WECHAT_APPS: Type.Optional(Type.String({ minLength: 2 })),
  WECHAT_API_BASE: Type.String({ pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$', default: 'https://api.weixin.qq.com' }),
  WECHAT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 5000 }),
  // Where the built-in simulator listens in development: PORT + 1 by default, a free port if taken.
  WECHAT_SIMULATOR_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  // A Redis Cluster instead: some of its nodes as comma-separated URLs (the others are found from
  // them); the first one's user, password and scheme (rediss: TLS) hold for every node.
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: '^rediss?://[^\\s,]+(,rediss?://[^\\s,]+)*$', maxLength: 4096 })),
  // Or a master found through Sentinel: the sentinels as comma-separated URLs (their own user and
  // password; rediss: TLS to the sentinels and the data nodes), the name of the master group, and
  // the data nodes' user and password.
  REDIS_SENTINELS: Type.Optional(Type.String({ pattern: '^rediss?://[^\\s,]+(,rediss?://[^\\s,]+)*$', maxLength: 4096 })),
  REDIS_SENTINEL_NAME: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' })),
  REDIS_NODE_USERNAME: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  REDIS_NODE_PASSWORD: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  // Durability: writes that open, rotate or revoke a session, or change a user, wait (WAIT) until
  // this many replicas have them, at most REDIS_WAIT_TIMEOUT_MS; 0: answer without waiting (Redis's
  // asynchronous replication).
  REDIS_WAIT_REPLICAS: Type.Integer({ minimum: 0, maximum: 5, default: 0 }),
  REDIS_WAIT_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 5000, default: 100 }),
  REDIS_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,32}$', default: 'wxauth:' }),
  // How each authenticated request checks its token with Redis. tracked (the default): from a read
  // copy kept coherent by Redis (CLIENT TRACKING pushes an invalidation the moment a user's key
  // changes; dropped on every disconnect): no round trip on a hit, a change made on another instance
  // seen there within the invalidation's trip (p99 0.12 ms measured under load; 500 ms at worst, a
  // silent partition). strict: one HMGET per request, so every instance's very next request sees a
  // change. Clients that cannot be tracked (ioredis, Cluster, Sentinel) run strict
  // (docs/design.md#the-access-check).
  ACCESS_CHECK: Type.Union([Type.Literal('tracked'), Type.Literal('strict')], { default: 'tracked' }),
  // The read copy's bound: tokens' checks kept, least recently used users dropped first (~400 bytes each).
  ACCESS_CACHE_MAX_ENTRIES: Type.Integer({ minimum: 100, maximum: 10000000, default: 100000 }),
  // Upper bound on any one store operation; past it the request gets 503 STORE_UNAVAILABLE.
  STORE_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 10000, default: 1000 }),
  // The standalone server's HTTP deadlines (a host app sets its own server's).
  HTTP_HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 120000, default: 10000 }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600000, default: 30000 }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600000, default: 72000 }),
  // The standalone server's processes: a number, or `auto` for every core it may use (node:cluster;
  // workers.ts). More than one needs Redis and a JWT_SECRET: the memory store and a generated secret
  // are per process.
  WORKERS: Type.String({ pattern: '^(auto|[1-9][0-9]?)$', default: '1' }),
  // The standalone server sheds load (503 OVERLOADED) while its event loop lags past this; 0: never.
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60000, default: 1000 }),
  // The standalone server's request-id header: taken from the request when sane, else made; answered.
  REQUEST_ID_HEADER: Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$', default: 'x-request-id' }),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  // The JWT_SECRET before a change, while refresh tokens issued under it may still come back.
  JWT_SECRET_PREVIOUS: Type.Optional(Type.String({ minLength: 32 })),
  JWT_ISSUER: Type.String({ minLength: 1, maxLength: 256, pattern: '^[\\x20-\\x7e]+$', default: 'fastify-wechat-auth' }),
  // Access tokens signed with a private key (ES256, EdDSA) whose public keys are served as a JWKS;
  // HS256 signs with JWT_SECRET. Refresh tokens always use JWT_SECRET.
  JWT_ALGORITHM: Type.Union([Type.Literal('HS256'), Type.Literal('ES256'), Type.Literal('EdDSA')], { default: 'HS256' }),
  JWT_PRIVATE_KEY: Type.Optional(Type.String({ minLength: 32, maxLength: 8192 })),
  // The public keys of the keys before a rotation, whose tokens keep verifying: PEM blocks or JWKs.
  JWT_PREVIOUS_PUBLIC_KEYS: Type.Optional(Type.String({ minLength: 32, maxLength: 32768 })),
  ACCESS_TOKEN_TTL: Type.Integer({ minimum: 30, maximum: 86400, default: 900 }),
  REFRESH_TOKEN_TTL: Type.Integer({ minimum: 60, maximum: 31536000, default: 2592000 }),
  REFRESH_GRACE_SECONDS: Type.Integer({ minimum: 0, maximum: 300, default: 10 }),
  // Absolute session lifetime: refreshing cannot keep a session alive past this.
  SESSION_MAX_AGE: Type.Integer({ minimum: 60, maximum: 31536000, default: 7776000 }),
  RATE_LIMIT_LOGIN_MAX: Type.Integer({ minimum: 1, default: 10 }),
  RATE_LIMIT_REFRESH_MAX: Type.Integer({ minimum: 1, default: 30 }),
  // Per user and mini program: each phone-number lookup is a paid-for WeChat call.
  RATE_LIMIT_PHONE_MAX: Type.Integer({ minimum: 1, default: 10 }),
  AUTH_PREFIX: Type.String({ pattern: '^(/[A-Za-z0-9._~-]+)*$', default: '/auth' }),
  // Session control: device types, exclusive ones, and the per-user session limit.
  DEVICE_TYPES: Type.String({ pattern: '^[a-z0-9-]{1,8}(,[a-z0-9-]{1,8})*$', default: 'mp,app,h5,web,pc' }),
  DEVICE_TYPE_DEFAULT: Type.String({ pattern: '^[a-z0-9-]{1,8}$', default: 'mp' }),
  EXCLUSIVE_DEVICE_TYPES: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,8}(,[a-z0-9-]{1,8})*$' })),
  EXCLUSIVE_MODE: Type.Union([Type.Literal('same'), Type.Literal('all'), Type.Literal('refuse')], { default: 'same' }),
  // A user's hash stays compact in Redis (listpack: 128 fields) with 16 sessions and 24 ended markers.
  MAX_SESSIONS_PER_USER: Type.Integer({ minimum: 1, maximum: 16, default: 10 }),
  // How long a step-up (a fresh wx.login() code) counts for routes that ask for one.
  STEP_UP_TTL: Type.Integer({ minimum: 10, maximum: 86400, default: 300 }),
  // One-time tickets (POST /auth/tickets): how long one can be exchanged.
  TICKET_TTL: Type.Integer({ minimum: 10, maximum: 600, default: 300 }),
  // Web QR logins confirmed in the mini program: how long a code can be scanned, confirmed and
  // collected; the mini-program page it opens (no leading '/', no query; '' the home page) and in
  // which version (trial and develop skip WeChat's check that the page is released).
  QR_TTL: Type.Integer({ minimum: 30, maximum: 600, default: 300 }),
  QR_PAGE: Type.String({ pattern: '^([A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*)?$', maxLength: 128, default: '' }),
  QR_ENV_VERSION: Type.Union([Type.Literal('release'), Type.Literal('trial'), Type.Literal('develop')], { default: 'release' }),
  // Per client IP: polling a QR login's state (GET /auth/qr/:id and its event stream).
  RATE_LIMIT_QR_POLL_MAX: Type.Integer({ minimum: 1, default: 120 }),
  // H5 login (an official account's web authorization, for pages opened inside WeChat): the
  // account's credentials, separate from the mini programs'. Off unless set with H5_RETURN_URLS (in
  // development with the simulator, H5_RETURN_URLS alone: the simulator's account stands in).
  WECHAT_OA_APPID: Type.Optional(Type.String({ pattern: '^wx[0-9a-f]{16}$' })),
  WECHAT_OA_SECRET: Type.Optional(Type.String({ minLength: 16, maxLength: 128 })),
  // Where the browser is sent to authorize (WeChat's page; a simulator's in tests).
  WECHAT_OA_AUTHORIZE_URL: Type.String({ pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$', default: 'https://open.weixin.qq.com/connect/oauth2/authorize' }),
  // The pages WeChat may send the browser back to (redirect_uri = returnTo), comma-separated
  // absolute URLs: a returnTo must have one's origin and start with its path. Nothing else is
  // ever a redirect target (no open redirect).
  H5_RETURN_URLS: Type.Optional(Type.String({ minLength: 8, maxLength: 4096 })),
  // How long the browser has from GET /auth/h5/authorize to POST /auth/h5/login.
  H5_STATE_TTL: Type.Integer({ minimum: 30, maximum: 600, default: 300 }),
  // Cookie mode: the device types whose refresh token travels only in an HttpOnly cookie (e.g.
  // `web,h5`), never in a JSON body; `off` for none.
  REFRESH_COOKIE: Type.String({ pattern: '^(off|[a-z0-9-]{1,8}(,[a-z0-9-]{1,8})*)$', default: 'off' }),
  // The standalone server's admin API: its own listener, off unless ADMIN_PORT is set.
  ADMIN_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  ADMIN_HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 32, maxLength: 256 })),
  // The standalone server's Prometheus metrics (GET /metrics): their own listener, off unless
  // METRICS_PORT is set; loopback by default (0.0.0.0 for a scraper in the pod's network).
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  METRICS_HOST: Type.String({ minLength: 1, default: '127.0.0.1' })
})
export type Config = Static<typeof ConfigSchema>

const AppId = Type.String({ pattern: '^wx[0-9a-f]{16}$' })

/** One mini program the gateway serves. */
export const WechatApp = Type.Object({
  appid: AppId,
  secret: Type.String({ minLength: 16, maxLength: 128 })
}, { additionalProperties: false })
export type WechatApp = Static<typeof WechatApp>
export const WechatApps = Type.Array(WechatApp, { minItems: 1, maxItems: 100 })
/** What a caller may pass: every key optional, numbers also as strings (as in the environment). */
export type ConfigInput = { [K in keyof Config]?: Config[K] | string }
