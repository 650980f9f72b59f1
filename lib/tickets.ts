// One-time tickets: a session hands its user to another device (a mini program opening a web view
// already logged in, an app handing off to the web). A ticket is 256 random bits, stored only as
// a digest, bound to the device type it may be exchanged for, and taken from the store in one
// operation: of concurrent exchanges exactly one gets a session.
import { TicketAudienceMismatchError, TicketInvalidError } from './errors.js'
import { digest, randomId, userTag } from './ids.js'
import type { AccessClaims } from './schemas.js'
import { orPutBack, type SessionOpener } from './session-opener.js'
import type { LoginDevice, OpenedPair, SessionsDeps } from './sessions-deps.js'
import type { HandoffStore } from './store/types.js'

const TICKET_BYTES = 32
/** A ticket's default audience: the web. */
export const DEFAULT_TICKET_AUDIENCE = 'web'

export function createTickets ({ store, config }: { store: HandoffStore, config: SessionsDeps['config'] & { TICKET_TTL?: number } }, opener: SessionOpener) {
  const ttlSec = config.TICKET_TTL ?? 300

  /**
   * A ticket for `user`'s user, to be exchanged once for a session of `audience` within TICKET_TTL;
   * AUTH_HANDOFF_REFUSED when `user`'s session keeps its refresh token in a cookie (cookie mode).
   */
  async function issue (user: AccessClaims, audience = DEFAULT_TICKET_AUDIENCE): Promise<{ ticket: string, deviceType: string, expiresIn: number }> {
    opener.checkDeviceType(audience)
    await opener.checkHandoff(user)
    const ticket = randomId(TICKET_BYTES)
    await store.putTicket(digest(ticket), { appid: user.aud, sub: user.sub, sid: user.sid, audience }, ttlSec * 1000)
    return { ticket, deviceType: audience, expiresIn: ttlSec }
  }

  /**
   * Spends a ticket for a session of its audience: AUTH_TICKET_INVALID when unknown, expired, spent, or
   * its issuing session has ended; AUTH_TICKET_AUDIENCE_MISMATCH (spent too) for another device type;
   * AUTH_DEVICE_TYPE_UNKNOWN (not spent) for a type not in DEVICE_TYPES. A session the rules refuse
   * (AUTH_DEVICE_IN_USE) or the store failing leaves it unspent; a ban spends it.
   */
  async function exchange (ticket: string, device: LoginDevice = {}): Promise<OpenedPair> {
    // Before the take: a typo in the request is the caller's, and must not cost the user the ticket.
    if (device.deviceType !== undefined) opener.checkDeviceType(device.deviceType)
    const ticketHash = digest(ticket)
    // Before the take: its time left (ttlMs) is measured in the store, so a ticket put back never
    // outlives it by the round trip.
    const takenAt = Date.now()
    const taken = await store.takeTicket(ticketHash)
    if (taken === null) throw new TicketInvalidError()
    const { grant } = taken
    if (device.deviceType !== undefined && device.deviceType !== grant.audience) {
      throw Object.assign(new TicketAudienceMismatchError(grant.audience), { detail: { deviceType: grant.audience } })
    }
    const opening = opener.openSessionLike(grant.appid, { tag: userTag(grant.appid, grant.sub), sid: grant.sid }, { ...device, deviceType: grant.audience }, 'ticket')
    // Refused (but for a ban) or failed: back in the store for what it had left to live, no more.
    const pair = await orPutBack(opening, async () => {
      const ttlMs = taken.ttlMs - (Date.now() - takenAt)
      if (ttlMs > 0) await store.putTicket(ticketHash, grant, ttlMs)
    })
    if (pair === null) throw new TicketInvalidError()
    return pair
  }

  return { issue, exchange }
}

export type Tickets = ReturnType<typeof createTickets>
