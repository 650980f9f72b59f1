// The admin API's bodies and answers (part of lib/schemas.ts, which re-exports them); the routes are
// routes/admin.ts.
import { Type } from '@sinclair/typebox'
import { AccessInput, Openid, PermissionName, ReasonCode, RoleName, ServiceName, SessionParams, SessionView, UserId } from './access-schemas.js'

/**
 * The admin token's characters: what an `Authorization: Bearer` header carries, printable ASCII
 * without a space. A token with a space, a non-ASCII letter or a secret file's trailing newline could
 * never be sent, and every request would get 401.
 */
export const ADMIN_TOKEN_CHARS = /^[\x21-\x7e]+$/
export const ADMIN_TOKEN_RULE = '32 to 256 printable ASCII characters, no space or line break (a secret file\'s trailing newline included), 10 of them distinct'

/** What is wrong with an admin token, said after its name (ADMIN_TOKEN, the admin API's token option); undefined when nothing. */
export function adminTokenProblem (token: string): string | undefined {
  if (token.length < 32 || token.length > 256 || !ADMIN_TOKEN_CHARS.test(token)) return `must be ${ADMIN_TOKEN_RULE}`
  if (new Set(token).size < 10) return 'is too weak (too few distinct characters)'
  return undefined
}

export const AdminAppid = Type.String({ minLength: 1, maxLength: 64, description: 'a mini program the gateway serves' })
export const BySub = Type.Object({ appid: AdminAppid, sub: UserId }, { additionalProperties: false })
export const ByOpenid = Type.Object({ appid: AdminAppid, openid: Openid }, { additionalProperties: false })
const IsoTime = Type.String({ format: 'date-time' })

export const KickBody = Type.Union([Type.Object({
  sessionId: Type.Optional(SessionParams.properties.sid),
  reason: Type.Optional(Type.String({ pattern: ReasonCode.pattern, description: 'told to the session\'s tokens (AUTH_SESSION_KICKED); `kicked` when omitted' }))
}, { additionalProperties: false }), Type.Null()], { description: 'optional: none ends every session of the user', examples: [{ reason: 'fraud' }] })
export const KickResponse = Type.Object({ ended: Type.Integer({ description: 'how many sessions ended' }) })
export const BanBody = Type.Object({
  reason: Type.String({ pattern: ReasonCode.pattern, description: 'told to the client (AUTH_ACCOUNT_BANNED)' }),
  until: Type.Optional(Type.String({ format: 'date-time', description: 'when the ban ends by itself (in the future); for good when omitted' })),
  service: Type.Optional(Type.String({ pattern: ServiceName.pattern, description: 'ban from this service only: sessions live on, routes that name it refuse' }))
}, { additionalProperties: false, examples: [{ reason: 'spam', until: '2030-01-01T00:00:00Z' }] })
// Both lists, always: PUT replaces them, so a forgotten one must not silently become empty.
export const AccessBody = Type.Object({
  roles: Type.Array(RoleName, { maxItems: AccessInput.properties.roles.maxItems, uniqueItems: true }),
  permissions: Type.Array(PermissionName, { maxItems: AccessInput.properties.permissions.maxItems, uniqueItems: true })
}, { additionalProperties: false, examples: [{ roles: ['admin'], permissions: ['order:refund'] }] })
export const UnbanQuery = Type.Object({ service: Type.Optional(ServiceName) }, { additionalProperties: false })
const BanView = Type.Object({ until: Type.Union([IsoTime, Type.Null()], { description: 'null: for good' }), reason: Type.String() })
export const UserStateResponse = Type.Object({
  appid: Type.String(),
  sub: Type.String({ description: 'the user id (the tokens\' sub)' }),
  roles: Type.Array(Type.String()),
  permissions: Type.Array(Type.String()),
  ban: Type.Union([BanView, Type.Null()], { description: 'the account\'s ban; null when none' }),
  serviceBans: Type.Array(Type.Object({ service: Type.String(), ...BanView.properties })),
  sessions: Type.Array(Type.Omit(SessionView, ['current']), { description: 'the live sessions: never a token or the session_key' })
})
