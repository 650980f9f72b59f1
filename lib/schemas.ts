// Every TypeBox schema of the project: configuration, route bodies and responses.
// Types are derived from these with Static<>, never written a second time.
import { STATUS_CODES } from 'node:http'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import {
  AuthAccountBannedError, AuthSessionKickedError, AuthSessionReplacedError, AuthTokenExpiredError, AuthTokenInvalidError, AuthTokenMissingError, AuthTokenRevokedError, AuthWrongAppError, MetricsUnavailableError, RouteNotFoundError,
  StoreUnavailableError, UpgradeRefusedError, WxBadResponseError, WxCredentialsRejectedError, WxRateLimitedError, WxTimeoutError, WxUnavailableError
} from './errors.js'
import { DeviceName } from './access-schemas.js'

export * from './config-schema.js'
export * from './access-schemas.js'
export * from './admin-schemas.js'
export * from './web-schemas.js'

// ---- HTTP bodies ----

// What a route that takes no query string or no body declares: a parameter or a field it would
// ignore is refused (400 FST_ERR_VALIDATION) instead, so a client's mistake shows at once.
/** The query string of a route that takes none: any parameter is refused. */
export const NoQuery = Type.Object({}, { additionalProperties: false })
/**
 * The body of a POST, PUT or DELETE route that takes none: no body (the route context's JSON parser
 * makes an empty one null), or `{}`, which many HTTP clients send for "nothing"; any field is refused.
 */
export const NoBody = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()], { description: 'none (or `{}`): this route takes no body' })

// WeChat codes are short printable ASCII; anything else is refused before it can reach WeChat.
const LoginCode = Type.String({ minLength: 1, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' })
const RefreshTokenString = Type.String({ minLength: 1, maxLength: 512 })

export const LoginBody = Type.Object({
  code: LoginCode,
  // Any string: one that is not a configured appid gets WX_APP_UNKNOWN, not a validation error.
  appid: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'which mini program; required when the gateway serves several' })),
  // Any short name: one that is not in DEVICE_TYPES gets AUTH_DEVICE_TYPE_UNKNOWN.
  deviceType: Type.Optional(Type.String({ minLength: 1, maxLength: 8, description: 'the kind of device, from DEVICE_TYPES (DEVICE_TYPE_DEFAULT when omitted)' })),
  deviceName: Type.Optional(DeviceName)
}, { additionalProperties: false, examples: [{ code: 'alice.1' }] })
export type LoginBody = Static<typeof LoginBody>

export const RefreshBody = Type.Object({ refreshToken: RefreshTokenString }, { additionalProperties: false })
export type RefreshBody = Static<typeof RefreshBody>

/** Refresh in cookie mode: the refresh token in the body (a mini program), or none (a web page: the cookie). */
export const CookieRefreshBody = Type.Union([
  Type.Object({ refreshToken: Type.Optional(RefreshTokenString) }, { additionalProperties: false }),
  Type.Null()
], { description: 'the refresh token; none from a web page whose refresh token is the cookie (send X-WeChat-Auth-CSRF: 1)' })

export const LogoutBody = Type.Union([
  Type.Object({ allDevices: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
  Type.Null()
], { description: 'optional: none ends this session, { "allDevices": true } every session of the user in this mini program', examples: [{ allDevices: true }] })
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

/** A token pair as answered in cookie mode: a web device type's refresh token is in the cookie, not here. */
export const WebTokenPair = Type.Object({
  ...TokenPair.properties,
  refreshToken: Type.Optional(Type.String({ description: 'absent for a web device type in cookie mode (REFRESH_COOKIE): then it is the HttpOnly cookie' }))
})

export const MeResponse = Type.Object({
  openid: Type.String(),
  unionid: Type.Optional(Type.String()),
  sessionId: Type.String(),
  issuedAt: Type.String({ description: 'ISO 8601 time the access token was issued' }),
  expiresAt: Type.String({ description: 'ISO 8601 time the access token expires' }),
  roles: Type.Array(Type.String(), { description: 'the user\'s roles now (they may change at any time)' }),
  permissions: Type.Array(Type.String()),
  steppedUpAt: Type.Union([Type.String({ format: 'date-time', description: 'when this session last stepped up' }), Type.Null()])
})
export type MeResponse = Static<typeof MeResponse>

// Only shape and size here: what is wrong inside (base64, lengths) is WX_DECRYPT_FAILED's to say.
export const DecryptBody = Type.Object({
  encryptedData: Type.String({ maxLength: 48 * 1024, description: 'base64, as the client received it' }),
  iv: Type.String({ maxLength: 1024, description: 'base64, 16 bytes' })
}, { additionalProperties: false, description: 'from wx.getUserInfo and the like; in development, POST <simulator>/dev/encrypt?user=alice makes some' })
export type DecryptBody = Static<typeof DecryptBody>

/** Whatever WeChat encrypted (user info, run data, group id...), with its watermark. */
export const DecryptResponse = Type.Object({}, { additionalProperties: true })

export const VerifySignatureBody = Type.Object({
  rawData: Type.String({ minLength: 1, maxLength: 16 * 1024 }),
  signature: Type.String({ minLength: 1, maxLength: 64 })
}, { additionalProperties: false, description: 'from wx.getUserInfo; in development, POST <simulator>/dev/encrypt?user=alice makes a pair' })
export type VerifySignatureBody = Static<typeof VerifySignatureBody>

export const PhoneBody = Type.Object({ code: LoginCode }, { additionalProperties: false, examples: [{ code: 'alice.p1' }] })
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
  message: Type.String(),
  /** What some codes add for the client: why a session ended, which device type is in use. */
  detail: Type.Optional(Type.Record(Type.String(), Type.String()))
})
/** The error responses every route declares. */
export const ErrorResponses = { '4xx': ErrorResponse, '5xx': ErrorResponse }

// ---- Error answers by route, and the OpenAPI document's parts ----

// Codes that are not lib/errors.ts constructors: Fastify's, the error handler's, the standalone server's.
const OTHER_STATUS = { FST_ERR_VALIDATION: 400, FST_ERR_CTP_INVALID_JSON_BODY: 400, FST_ERR_CTP_BODY_TOO_LARGE: 413, FST_ERR_CTP_INVALID_MEDIA_TYPE: 415, INTERNAL_ERROR: 500, HTTP_BAD_REQUEST: 400, HTTP_REQUEST_TIMEOUT: 408, HTTP_HEADERS_TOO_LARGE: 431, HTTP_EXPECTATION_FAILED: 417, HTTP_METHOD_NOT_ALLOWED: 405, HTTP_URI_TOO_LONG: 414, FST_ERR_BAD_URL: 400, SERVER_OVERLOADED: 503 } as const
/** An error a route may answer: a lib/errors.ts constructor, or one of the codes above. */
export type RouteError = (new () => Error & { code: string, statusCode?: number }) | keyof typeof OTHER_STATUS
type Answer = { statusCode: number, code: string, error?: string, message: string }

const answerOf = (E: RouteError): Answer => typeof E === 'string'
  ? { statusCode: OTHER_STATUS[E], code: E, message: STATUS_CODES[OTHER_STATUS[E]] as string }
  : (({ statusCode, code, message }) => ({ statusCode: statusCode ?? 500, code, message: message.replaceAll('%s', '…') }))(new E())

/** The answers of one status: their codes (an enum, not checked when serialising) and an example of each. */
const errorAnswer = (status: number, answers: Answer[]) => Type.Object({
  ...ErrorResponse.properties, statusCode: Type.Integer({ enum: [status] }), code: Type.String({ enum: answers.map((a) => a.code) })
}, {
  description: answers.map((a) => a.code).join(', '),
  'x-examples': Object.fromEntries(answers.map((a) => [a.code, { value: { statusCode: status, code: a.code, error: STATUS_CODES[status], message: a.message } }]))
})

/** A route's error responses: one per status, naming the codes the route answers with it. */
export function errorResponses (...errors: RouteError[]): Record<string, TSchema> {
  const byStatus = new Map<number, Answer[]>()
  // A code two shared lists hold (FST_ERR_VALIDATION: any's query, body's fields) is listed once.
  for (const a of [...new Set(errors)].map(answerOf)) byStatus.set(a.statusCode, [...(byStatus.get(a.statusCode) ?? []), a])
  const other = (description: string) => Type.Object(ErrorResponse.properties, { description })
  return { ...Object.fromEntries([...byStatus].map(([status, answers]) => [status, errorAnswer(status, answers)])), '4xx': other('another client error'), '5xx': other('another server error') }
}

/**
 * Errors routes share: in any gateway context (every route there declares its query, NoQuery when it
 * takes none), with a JSON body, behind fastify.authenticate, calling WeChat.
 */
export const RouteErrors = {
  any: [UpgradeRefusedError, 'INTERNAL_ERROR', 'FST_ERR_VALIDATION'],
  body: ['FST_ERR_VALIDATION', 'FST_ERR_CTP_INVALID_JSON_BODY', 'FST_ERR_CTP_BODY_TOO_LARGE', 'FST_ERR_CTP_INVALID_MEDIA_TYPE'],
  authenticated: [
    AuthTokenMissingError, AuthTokenInvalidError, AuthTokenExpiredError, AuthTokenRevokedError, AuthSessionReplacedError, AuthSessionKickedError,
    AuthAccountBannedError, StoreUnavailableError
  ],
  wechat: [WxRateLimitedError, WxUnavailableError, WxTimeoutError, WxBadResponseError, WxCredentialsRejectedError],
  // A path parameter that does not decode (a malformed percent-encoding): answered before the route, with its 400.
  params: ['FST_ERR_BAD_URL']
} satisfies Record<string, RouteError[]>

/** The gateway's tags: they also tell its routes from a host's in a document both share. */
export const Tags = { sessions: 'wechat-auth: sessions', userData: 'wechat-auth: user data', health: 'wechat-auth: health', keys: 'wechat-auth: keys' } as const
const GATEWAY_TAGS = new Set<string>(Object.values(Tags))
/** Whether a route's schema is one of the gateway's (tagged as its). */
export const isGatewayRoute = (schema: { tags?: readonly string[] } | undefined): boolean => schema?.tags?.some((tag) => GATEWAY_TAGS.has(tag)) === true
/** The security requirement of the routes that take an access token. */
export const BearerAuth = [{ wechatAuth: [] }]

/** What a document listing the gateway's routes needs, a host's included. */
export const OpenApiParts = {
  info: { title: 'fastify-wechat-auth', version: '1', description: 'WeChat mini-program login. In development, the simulator takes login codes `alice` or `alice.<anything>` (each once); errors are `{ statusCode, code, error, message }`: match on `code`.' },
  tags: [{ name: Tags.sessions, description: 'Log in with a wx.login() code, refresh, log out' }, { name: Tags.userData, description: 'WeChat user data, with the session\'s session_key' }, { name: Tags.health }, { name: Tags.keys, description: 'The public keys of ES256/EdDSA access tokens' }],
  securitySchemes: { wechatAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'the accessToken answered by login or refresh' } },
  // Codes no gateway route answers: a path it does not serve, the standalone server's refusals before
  // any route, its metrics listener, and a host route behind fastify.authenticateFor(appid).
  responses: Object.fromEntries<object>(([RouteNotFoundError, AuthWrongAppError, 'HTTP_BAD_REQUEST', 'HTTP_REQUEST_TIMEOUT', 'HTTP_HEADERS_TOO_LARGE', 'HTTP_EXPECTATION_FAILED', 'HTTP_METHOD_NOT_ALLOWED', 'HTTP_URI_TOO_LONG', 'FST_ERR_BAD_URL', 'SERVER_OVERLOADED', MetricsUnavailableError] as RouteError[])
    .map(answerOf).map((a) => {
      // Plain JSON Schema, valid in OpenAPI 3.0 too: nothing converts components.
      const schema = Type.Pick(errorAnswer(a.statusCode, [a]), ['statusCode', 'code', 'error', 'message'])
      return [a.code, { description: `${a.statusCode} ${a.code}`, content: { 'application/json': { schema, examples: errorAnswer(a.statusCode, [a])['x-examples'] } } }]
    }))
}

// ---- JWT claims ----

export const AccessClaims = Type.Object({
  sub: Type.String({ minLength: 1 }),
  openid: Type.String({ minLength: 1 }),
  unionid: Type.Optional(Type.String()),
  sid: Type.String({ minLength: 1 }),
  // The session's generation a refreshed token was issued at (lib/refresh.ts): its first use marks the rotation delivered.
  sgen: Type.Optional(Type.Integer({ minimum: 1 })),
  jti: Type.String({ minLength: 1 }),
  iat: Type.Integer(),
  exp: Type.Integer(),
  iss: Type.String(),
  aud: Type.String()
})
/** Claims of a verified access token plus whatever the host's resolveUser added. */
export type AccessClaims = Static<typeof AccessClaims> & Record<string, unknown>
