// Schemas of handing a login to another device (part of lib/schemas.ts, which re-exports them):
// one-time tickets and web QR logins confirmed in the mini program.
import { Type } from '@sinclair/typebox'
import { DeviceName } from './access-schemas.js'

const DeviceType = Type.String({ minLength: 1, maxLength: 8, description: 'a device type from DEVICE_TYPES' })

export const TicketBody = Type.Union([
  Type.Object({ deviceType: Type.Optional(DeviceType) }, { additionalProperties: false }),
  Type.Null()
], { description: 'optional: the device type the ticket may be exchanged for (`web` when omitted)', examples: [{ deviceType: 'web' }] })

export const TicketResponse = Type.Object({
  ticket: Type.String({ description: 'one-time; hand it to the other device, never log it' }),
  deviceType: Type.String({ description: 'the device type it may be exchanged for' }),
  expiresIn: Type.Integer({ description: 'seconds it can be exchanged in' })
})

export const TicketExchangeBody = Type.Object({
  ticket: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' }),
  deviceType: Type.Optional(Type.String({ minLength: 1, maxLength: 8, description: 'when given, must be the ticket\'s' })),
  deviceName: Type.Optional(DeviceName)
}, { additionalProperties: false, examples: [{ ticket: 'Yk3v0JH6bq2Tz1x8m0b7g3H0d6m8ZxWcT1x8m0b7g3E' }] })

/** A QR login's id: 128 bits, base64url, the `scene` of its mini-program code. */
export const QrParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{22}$' }) }, { additionalProperties: false })

export const QrCreateBody = Type.Union([
  Type.Object({ appid: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'which mini program confirms; required when the gateway serves several' })) }, { additionalProperties: false }),
  Type.Null()
], { description: 'optional' })

export const QrCreated = Type.Object({
  id: Type.String({ description: 'the scene of the mini-program code (GET /qr/:id/image); public' }),
  secret: Type.String({ description: 'keep it in this browser only: it collects the tokens; never log it' }),
  expiresIn: Type.Integer({ description: 'seconds the code can be scanned, confirmed and collected in' })
})

const QrStateName = Type.Union(['pending', 'scanned', 'confirmed', 'cancelled', 'expired'].map((s) => Type.Literal(s)))
export const QrStatus = Type.Object({ state: QrStateName, expiresIn: Type.Integer() })

export const QrScanned = Type.Object({
  state: QrStateName,
  expiresIn: Type.Integer(),
  client: Type.Object({
    ip: Type.String(),
    userAgent: Type.String(),
    createdAt: Type.String({ format: 'date-time', description: 'when the web page made the code' })
  }, { description: 'what is asking to log in: show it on the confirmation screen' })
})

export const QrCollectBody = Type.Object({
  secret: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' }),
  deviceName: Type.Optional(DeviceName)
}, { additionalProperties: false, examples: [{ secret: 'kept-by-the-browser' }] })

/** The event stream: `event: state`, `data: { state, expiresIn }` at once and after every change; it ends with a final state. */
export const QrEvents = Type.String({ description: 'text/event-stream' })
export const QrImage = Type.Unsafe<Uint8Array>({ type: 'string', format: 'binary', description: 'the mini-program code (PNG)' })

// ---- H5 login (an official account's web authorization) ----

export const H5AuthorizeQuery = Type.Object({
  scope: Type.Optional(Type.Union([Type.Literal('snsapi_base'), Type.Literal('snsapi_userinfo')], { description: 'snsapi_base (silent, the default) or snsapi_userinfo (asks the user; nickname and avatar for resolveUser)' })),
  returnTo: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'the page WeChat sends the browser back to with code and state: one of H5_RETURN_URLS (the first when omitted)' })),
  appid: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'the mini program whose user this is; required when the gateway serves several' }))
}, { additionalProperties: false })

// What WeChat appended to the page's address, as the page found it: either may be missing (a user
// who declined snsapi_userinfo comes back with a state and no code), each refusal has its code.
const CallbackValue = Type.String({ maxLength: 256, pattern: '^[\\x21-\\x7e]*$' })
export const H5LoginBody = Type.Union([
  Type.Object({
    code: Type.Optional(CallbackValue),
    state: Type.Optional(CallbackValue),
    deviceName: Type.Optional(DeviceName)
  }, { additionalProperties: false }),
  Type.Null()
], { description: 'code and state as WeChat added them to the page\'s address', examples: [{ code: 'code-from-the-page-address', state: 'state-from-the-page-address' }] })

export const H5Redirect = Type.Null({ description: 'to WeChat\'s authorize page (location), with this browser\'s H5 cookie set (set-cookie)' })
