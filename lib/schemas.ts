// Every TypeBox schema of the project: configuration, route bodies and responses.
// Types are derived from these with Static<>, never written a second time.
import { Type, type Static } from '@sinclair/typebox'

const LogLevel = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))
)

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
  REDIS_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,32}$', default: 'wxauth:' }),
  // Upper bound on any one store operation; past it the request gets 503 STORE_UNAVAILABLE.
  STORE_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 10000, default: 1000 }),
  // The standalone server's HTTP deadlines (a host app sets its own server's).
  HTTP_HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 120000, default: 10000 }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600000, default: 30000 }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600000, default: 72000 }),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  // The JWT_SECRET before a change, while refresh tokens issued under it may still come back.
  JWT_SECRET_PREVIOUS: Type.Optional(Type.String({ minLength: 32 })),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'fastify-wechat-auth' }),
  ACCESS_TOKEN_TTL: Type.Integer({ minimum: 30, maximum: 86400, default: 900 }),
  REFRESH_TOKEN_TTL: Type.Integer({ minimum: 60, maximum: 31536000, default: 2592000 }),
  REFRESH_GRACE_SECONDS: Type.Integer({ minimum: 0, maximum: 300, default: 10 }),
  // Absolute session lifetime: refreshing cannot keep a session alive past this.
  SESSION_MAX_AGE: Type.Integer({ minimum: 60, maximum: 31536000, default: 7776000 }),
  RATE_LIMIT_LOGIN_MAX: Type.Integer({ minimum: 1, default: 10 }),
  RATE_LIMIT_REFRESH_MAX: Type.Integer({ minimum: 1, default: 30 }),
  // Per user and mini program: each phone-number lookup is a paid-for WeChat call.
  RATE_LIMIT_PHONE_MAX: Type.Integer({ minimum: 1, default: 10 }),
  AUTH_PREFIX: Type.String({ pattern: '^(/[A-Za-z0-9._~-]+)*$', default: '/auth' })
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

// ---- HTTP bodies ----

// WeChat codes are short printable ASCII; anything else is refused before it can reach WeChat.
const LoginCode = Type.String({ minLength: 1, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' })
const RefreshTokenString = Type.String({ minLength: 1, maxLength: 512 })

export const LoginBody = Type.Object({
  code: LoginCode,
  // Any string: one that is not a configured appid gets WX_APP_UNKNOWN, not a validation error.
  appid: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'which mini program; required when the gateway serves several' }))
}, { additionalProperties: false })
export type LoginBody = Static<typeof LoginBody>

export const RefreshBody = Type.Object({ refreshToken: RefreshTokenString }, { additionalProperties: false })
export type RefreshBody = Static<typeof RefreshBody>

export const LogoutBody = Type.Union([
  Type.Object({ allDevices: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
  Type.Null()
])
export type LogoutBody = Static<typeof LogoutBody>

export const TokenPair = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'seconds until the access token expires' }),
  refreshToken: Type.String(),
  refreshExpiresIn: Type.Integer({ description: 'seconds until the refresh token expires if unused' }),
  openid: Type.String(),
  unionid: Type.Optional(Type.String())
})
export type TokenPair = Static<typeof TokenPair>

export const MeResponse = Type.Object({
  openid: Type.String(),
  unionid: Type.Optional(Type.String()),
  sessionId: Type.String(),
  issuedAt: Type.String({ description: 'ISO 8601 time the access token was issued' }),
  expiresAt: Type.String({ description: 'ISO 8601 time the access token expires' })
})
export type MeResponse = Static<typeof MeResponse>

// Only shape and size here: what is wrong inside (base64, lengths) is WX_DECRYPT_FAILED's to say.
export const DecryptBody = Type.Object({
  encryptedData: Type.String({ maxLength: 48 * 1024, description: 'base64, as the client received it' }),
  iv: Type.String({ maxLength: 1024, description: 'base64, 16 bytes' })
}, { additionalProperties: false })
export type DecryptBody = Static<typeof DecryptBody>

/** Whatever WeChat encrypted (user info, run data, group id...), with its watermark. */
export const DecryptResponse = Type.Object({}, { additionalProperties: true })

export const VerifySignatureBody = Type.Object({
  rawData: Type.String({ minLength: 1, maxLength: 16 * 1024 }),
  signature: Type.String({ minLength: 1, maxLength: 64 })
}, { additionalProperties: false })
export type VerifySignatureBody = Static<typeof VerifySignatureBody>

export const PhoneBody = Type.Object({ code: LoginCode }, { additionalProperties: false })
export type PhoneBody = Static<typeof PhoneBody>

export const PhoneResponse = Type.Object({
  phoneNumber: Type.String({ description: 'with the country code for numbers outside mainland China' }),
  purePhoneNumber: Type.String(),
  countryCode: Type.String()
})
export type PhoneResponse = Static<typeof PhoneResponse>

export const HealthResponse = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  store: Type.Union([Type.Literal('redis'), Type.Literal('memory')]),
  code: Type.Optional(Type.Literal('STORE_UNAVAILABLE'))
})

export const LiveResponse = Type.Object({ status: Type.Literal('ok') })

export const NoContent = Type.Null()

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String()
})
/** The error responses every route declares. */
export const ErrorResponses = { '4xx': ErrorResponse, '5xx': ErrorResponse }

// ---- JWT claims ----

export const AccessClaims = Type.Object({
  sub: Type.String({ minLength: 1 }),
  openid: Type.String({ minLength: 1 }),
  unionid: Type.Optional(Type.String()),
  sid: Type.String({ minLength: 1 }),
  jti: Type.String({ minLength: 1 }),
  iat: Type.Integer(),
  exp: Type.Integer(),
  iss: Type.String(),
  aud: Type.String()
})
/** Claims of a verified access token plus whatever the host's resolveUser added. */
export type AccessClaims = Static<typeof AccessClaims> & Record<string, unknown>
