// Schemas of session and access control (part of lib/schemas.ts, which re-exports them): a user's
// sessions as they are listed, the names of roles, permissions and services, step-up, forward auth.
import { Type, type Static } from '@sinclair/typebox'

/**
 * A user id (the tokens' `sub`), as resolveUser returned it: 1 to 256 characters, no control
 * character (U+0000–U+001F, U+007F) and no half of a surrogate pair. The pattern bounds the length,
 * counting a pair (an emoji) as one character with or without Ajv's `u` flag: a `maxLength` counts
 * it once in Ajv and twice in TypeBox, and an id of 129 emoji passed the admin route and then failed
 * the host API's check of the same schema. login.ts holds resolveUser's ids to it too.
 */
export const USER_ID_PATTERN = '^(?:[^\\x00-\\x1f\\x7f\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff]){1,256}$'
export const UserId = Type.String({
  pattern: USER_ID_PATTERN,
  description: 'the user id (the tokens\' sub): 1 to 256 characters, no control characters'
})
/** An openid, as WeChat spells them. */
export const Openid = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' })

/** A role: a plain name, compared exactly. */
export const RoleName = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' })
/** A permission, e.g. `order:refund`; a held `order:*` grants every `order:...`, a held `*` every one. */
export const PermissionName = Type.String({ pattern: '^[A-Za-z0-9_.:-]{0,63}[A-Za-z0-9_.:*-]$' })
/** A service a ban may be limited to, named by the host's routes (authorize's `service`). */
export const ServiceName = Type.String({ pattern: '^[a-z0-9_.-]{1,32}$' })
/**
 * A device's name, as its user and operators will see it in the list of sessions: no control
 * characters (C0, DEL, C1), no bidi embeddings, overrides or isolates (U+202A–U+202E, U+2066–U+2069)
 * and no lone surrogates, which could make one name read as another. Written to hold in Ajv with or
 * without its `u` flag: a surrogate pair (an emoji) passes as the pair, never as two halves.
 */
export const DeviceName = Type.String({
  maxLength: 64,
  pattern: '^(?:[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff])*$',
  description: 'what the device is (in a mini program, e.g. wx.getDeviceInfo().model); shown in the list of sessions, cut to 20 bytes. ' +
    'No control characters, bidi controls (U+202A–U+202E, U+2066–U+2069) or lone surrogates'
})

/** A reason code the client is told: short and plain, never free text. */
export const ReasonCode = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,32}$' })

/** A user's roles and permissions, as resolveUser returns them or an operator sets them. */
export const AccessInput = Type.Object({
  roles: Type.Array(RoleName, { maxItems: 32, uniqueItems: true, default: [] }),
  permissions: Type.Array(PermissionName, { maxItems: 64, uniqueItems: true, default: [] })
}, { additionalProperties: false })
export type AccessInput = Static<typeof AccessInput>

/** What a route asks of its caller (fastify.authorize). */
export const Requirement = Type.Object({
  roles: Type.Optional(Type.Array(RoleName, { minItems: 1 })),
  permissions: Type.Optional(Type.Array(PermissionName, { minItems: 1 })),
  /** `all` (the default): every role and permission listed; `any`: at least one of them. */
  mode: Type.Optional(Type.Union([Type.Literal('all'), Type.Literal('any')], { description: '\'all\' or \'any\'' })),
  /** A step-up within STEP_UP_TTL (true), or within this many seconds (at most STEP_UP_TTL). */
  stepUp: Type.Optional(Type.Union([Type.Literal(true), Type.Integer({ minimum: 1, maximum: 86400 })], { description: 'true or whole seconds from 1 to 86400' })),
  /** Refuse users banned from this service. */
  service: Type.Optional(ServiceName)
}, { additionalProperties: false })
export type Requirement = Static<typeof Requirement>

export const StepUpBody = Type.Object({
  code: Type.String({ minLength: 1, maxLength: 256, pattern: '^[\\x21-\\x7e]+$', description: 'a fresh wx.login() code of the same user' })
}, { additionalProperties: false, examples: [{ code: 'alice.2' }] })
export type StepUpBody = Static<typeof StepUpBody>

export const StepUpResponse = Type.Object({
  steppedUpAt: Type.String({ format: 'date-time', description: 'when the session proved its user again' }),
  expiresIn: Type.Integer({ description: 'seconds the step-up counts for (STEP_UP_TTL); a route may ask for a more recent one' })
})

// Several values: the key repeated, or one value with commas (names never hold one).
const Names = (name: string) => Type.Union([Type.String({ maxLength: 2048 }), Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 64 })], { description: `${name}(s) the caller must hold: repeated, or comma-separated` })

/** What a proxy may ask of GET /auth/verify's caller, by query string (nginx auth_request, Traefik address). */
export const VerifyQuery = Type.Object({
  role: Type.Optional(Names('role')),
  permission: Type.Optional(Names('permission')),
  mode: Type.Optional(Type.Union([Type.Literal('all'), Type.Literal('any')])),
  appid: Type.Optional(Type.String({ pattern: '^wx[0-9a-f]{16}$', description: 'the token must be of this mini program (403 AUTH_WRONG_APP)' })),
  service: Type.Optional(ServiceName),
  stepUp: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,4}$', description: 'seconds: a step-up this recent (at most STEP_UP_TTL)' }))
}, { additionalProperties: false })
export type VerifyQuery = Static<typeof VerifyQuery>

export const VerifyResponse = Type.Object({
  sub: Type.String(),
  openid: Type.String(),
  appid: Type.String(),
  sessionId: Type.String(),
  roles: Type.Array(Type.String()),
  permissions: Type.Array(Type.String())
}, { description: 'the caller; the same in the X-Auth-Request-* and Remote-* headers' })

/** The public keys of asymmetric access tokens (RFC 7517). */
export const Jwks = Type.Object({
  keys: Type.Array(Type.Object({
    kty: Type.String(),
    crv: Type.String(),
    x: Type.String(),
    y: Type.Optional(Type.String()),
    kid: Type.String({ description: 'RFC 7638 thumbprint; the kid of the tokens it verifies' }),
    alg: Type.String(),
    use: Type.Literal('sig')
  }))
})

const IsoTime = (description: string) => Type.String({ format: 'date-time', description })

/** One of the caller's sessions, as GET /auth/sessions lists it: never a token or the session_key. */
export const SessionView = Type.Object({
  sessionId: Type.String(),
  deviceType: Type.String({ description: 'from DEVICE_TYPES' }),
  deviceName: Type.String({ description: 'as the client said at login (cut to 20 bytes); empty when it said nothing' }),
  ip: Type.String({ description: 'the client IP at login' }),
  userAgent: Type.String({ description: 'the start of the User-Agent at login' }),
  createdAt: IsoTime('when the session was opened (the login)'),
  lastRefreshAt: Type.Union([IsoTime('when the session was last refreshed'), Type.Null()]),
  expiresAt: IsoTime('when the session ends unless refreshed'),
  current: Type.Boolean({ description: 'the session of the token that asked' })
})
export const SessionsResponse = Type.Object({ sessions: Type.Array(SessionView) })
export type SessionsResponse = Static<typeof SessionsResponse>

export const SessionParams = Type.Object({
  sid: Type.String({ pattern: '^[A-Za-z0-9_-]{12}$', description: 'a sessionId from GET /auth/sessions' })
}, { additionalProperties: false })
