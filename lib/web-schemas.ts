// Schemas of handing a login to another device (part of lib/schemas.ts, which re-exports them):
// one-time tickets and web QR logins confirmed in the mini program.
import { Type } from '@sinclair/typebox'

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
  deviceName: Type.Optional(Type.String({ maxLength: 64, description: 'shown in the list of sessions, cut to 20 bytes' }))
}, { additionalProperties: false, examples: [{ ticket: 'Yk3v0JH6bq2Tz1x8m0b7g3H0d6m8ZxWcT1x8m0b7g3E' }] })
