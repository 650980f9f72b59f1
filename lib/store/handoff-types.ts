// The store's part of handing a user's login to another device: one-time tickets and web QR logins
// (issue 18). Short-lived records; each change is one atomic store operation, decided by the
// store's clock. Part of SessionStore (types.ts).
import type { SessionRef } from '../ids.js'

/** What a ticket grants: a new session of `audience` (a device type) for the user of session `sid`. */
export interface TicketGrant {
  appid: string
  sub: string
  sid: string
  audience: string
}

/** A ticket as taken: its grant, and how long it had left to live (so that it can be put back as it was). */
export interface TakenTicket {
  grant: TicketGrant
  ttlMs: number
}

export type QrState = 'pending' | 'scanned' | 'confirmed' | 'cancelled' | 'expired'

/** A web QR login as the store keeps it; never its secret (only a digest is stored). */
export interface QrRecord {
  state: QrState
  appid: string
  /** ms epoch, by the store's clock. */
  createdAt: number
  expiresAt: number
  /** The web client that created it, shown on the confirmation screen. */
  ip: string
  userAgent: string
  /** The mini-program session that scanned (then confirmed or cancelled) it. */
  scanner: SessionRef | null
  scannedAt: number | null
  /** Whether the web client took its tokens (once). */
  collected: boolean
}

export interface NewQr {
  appid: string
  secretHash: string
  ttlMs: number
  ip: string
  userAgent: string
}

/** A step of the mini program's user: `scan`, then `confirm` or `cancel`. */
export type QrStep = 'scan' | 'confirm' | 'cancel'

/**
 * Why a step or a collect was refused: no such QR login (never made, or forgotten after it ended),
 * expired, made for another mini program, scanned by another user, a wrong secret, collected
 * already, or not in a state the step can follow (`state` says which it is in).
 */
export type QrRefusal = 'missing' | 'expired' | 'wrong-app' | 'other-user' | 'wrong-secret' | 'collected' | 'state'

export type QrOutcome = { status: 'ok', record: QrRecord } | { status: 'refused', why: QrRefusal, state?: QrState }

/** One-time tickets and QR logins. */
export interface HandoffStore {
  /** Keeps a ticket, by the digest of its value, for `ttlMs`. */
  putTicket: (ticketHash: string, grant: TicketGrant, ttlMs: number) => Promise<void>
  /**
   * Reads and forgets a ticket in one operation: of concurrent takers one gets it (and its time left,
   * by the store's clock), the others null. A taker whose session could not be opened puts it back
   * with putTicket for that time.
   */
  takeTicket: (ticketHash: string) => Promise<TakenTicket | null>
  /** Makes a pending QR login; kept `keepMs` past its expiry so that pollers are told `expired`. */
  createQr: (id: string, qr: NewQr, keepMs: number) => Promise<QrRecord>
  getQr: (id: string) => Promise<QrRecord | null>
  /** A user's step, by the session `by` of mini program `appid`. */
  stepQr: (id: string, step: QrStep, appid: string, by: SessionRef) => Promise<QrOutcome>
  /** Marks a confirmed QR login collected when `secretHash` is its secret's: once. */
  collectQr: (id: string, secretHash: string) => Promise<QrOutcome>
  /** Undoes a collect whose session could not be opened: collectable again until it expires. Nothing when it is gone. */
  uncollectQr: (id: string) => Promise<void>
  /** Calls `listener` after changes of the QR login (on any instance), and when the store stops or starts answering again; returns the unsubscribe. */
  watchQr: (id: string, listener: () => void) => () => void
}
