// One-time tickets: a session hands its user to another device (a mini program opening a web view
// already logged in, an app handing off to the web). A ticket is 256 random bits, stored only as
// a digest, bound to the device type it may be exchanged for, and taken from the store in one
// operation: of concurrent exchanges exactly one gets a session.
import { TicketAudienceMismatchError, TicketInvalidError } from './errors.js'
import { digest, randomId, userTag } from './ids.js'
import type { AccessClaims } from './schemas.js'
import type { SessionOpener } from './session-opener.js'
import type { LoginDevice, OpenedPair, SessionsDeps } from './sessions-deps.js'
import type { HandoffStore } from './store/types.js'

const TICKET_BYTES = 32
/** A ticket's default audience: the web. */
export const DEFAULT_TICKET_AUDIENCE = 'web'

export function createTickets ({ store, config }: { store: HandoffStore, config: SessionsDeps['config'] & { TICKET_TTL?: number } }, opener: SessionOpener) {
  const ttlSec = config.TICKET_TTL ?? 300

  /** A ticket for `user`'s user, to be exchanged once for a session of `audience` within TICKET_TTL. */
  async function issue (user: AccessClaims, audience = DEFAULT_TICKET_AUDIENCE): Promise<{ ticket: string, deviceType: string, expiresIn: number }> {
    opener.checkDeviceType(audience)
    const ticket = randomId(TICKET_BYTES)
    await store.putTicket(digest(ticket), { appid: user.aud, sub: user.sub, sid: user.sid, audience }, ttlSec * 1000)
    return { ticket, deviceType: audience, expiresIn: ttlSec }
  }

  /**
   * Spends a ticket for a session of its audience: AUTH_TICKET_INVALID when unknown, expired, spent, or
   * its issuing session has ended; AUTH_TICKET_AUDIENCE_MISMATCH (spent too) for another device type;
   * AUTH_DEVICE_TYPE_UNKNOWN (not spent) for a type not in DEVICE_TYPES.
   */
  async function exchange (ticket: string, device: LoginDevice = {}): Promise<OpenedPair> {
    // Before the take: a typo in the request is the caller's, and must not cost the user the ticket.
    if (device.deviceType !== undefined) opener.checkDeviceType(device.deviceType)
    const grant = await store.takeTicket(digest(ticket))
    if (grant === null) throw new TicketInvalidError()
    if (device.deviceType !== undefined && device.deviceType !== grant.audience) {
      throw Object.assign(new TicketAudienceMismatchError(grant.audience), { detail: { deviceType: grant.audience } })
    }
    const pair = await opener.openSessionLike(grant.appid, { tag: userTag(grant.appid, grant.sub), sid: grant.sid }, { ...device, deviceType: grant.audience }, 'ticket')
    if (pair === null) throw new TicketInvalidError()
    return pair
  }

  return { issue, exchange }
}

export type Tickets = ReturnType<typeof createTickets>
