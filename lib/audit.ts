// Audit events: one line of a fixed shape for each thing that happens to a session or a user (a
// session opened, refreshed, reused, ended; a step-up; a kick, a ban, roles changed), for the log and
// for a host that subscribes. Never a secret: no token, code, session_key, ticket or QR secret has a
// field here. The request's client IP and id are those of the HTTP request the flow serves, which the
// route hands the flow (RequestContext). Not an AsyncLocalStorage: on Node 20 it turns on promise hooks
// for every promise in the process, about a tenth of a login's CPU (BENCHMARKS.md).

import type { EventEmitter } from 'node:events'
import type { Logger } from './logger.js'
import { throttledWarning } from './throttled-warning.js'

export type AuditName =
  | 'session.open' | 'login' | 'refresh' | 'refresh.reuse' | 'logout' | 'step-up'
  | 'kick' | 'ban' | 'unban' | 'access.set'

/** How a session was opened: a mini-program login, a ticket exchange, a web QR login, a WeChat H5 login. */
export type SessionVia = 'login' | 'ticket' | 'qr' | 'h5'

export interface AuditEvent {
  event: AuditName
  /** 'ok', or the error code the client was answered. */
  outcome: string
  appid?: string
  userId?: string
  sessionId?: string
  deviceType?: string
  /** session.open: how the session was opened. */
  via?: SessionVia
  /** What the event adds: a kick's or ban's reason code, a service, how many sessions ended... */
  reason?: string
  ip?: string
  requestId?: string
}

/** The HTTP request an event happens in, as the route tells the flow: none for a call of the host's own. */
export interface RequestContext { ip?: string, requestId?: string }

export type Audit = (event: Omit<AuditEvent, 'ip' | 'requestId'>, request?: RequestContext) => void

/**
 * An audit function writing to `sink`, with the request's IP and id added to the event itself: each
 * caller makes its event for the call. A copy (`{ ...event }` of events of a dozen shapes) cost every
 * refresh and login about 1 µs (line ticks of the gateway's CPU profile under `npm run bench`).
 */
export function createAudit (sink: (event: AuditEvent) => void): Audit {
  return (event, request) => {
    const full: AuditEvent = event
    if (request?.ip !== undefined) full.ip = request.ip
    if (request?.requestId !== undefined) full.requestId = request.requestId
    // A subscriber's bug must not fail the request that caused the event.
    try { sink(full) } catch {}
  }
}

/** The outcome of a failure: its code, or 'error'. */
export const outcomeOf = (err: unknown): string => {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'error'
}

/**
 * The gateway's sink: the event's log line, then each audit listener of `events` on its own: one that
 * throws (a host's bug) does not keep it from those after it (the metrics' among them), as
 * EventEmitter.emit would. A listener's failure is warned of, a line a minute at most.
 */
export function auditSink (log: Pick<Logger, 'info' | 'warn'>, events: EventEmitter<{ audit: [AuditEvent] }>): (event: AuditEvent) => void {
  const failed = throttledWarning(60_000, (count, err: unknown) => { log.warn({ err, count }, 'an audit subscriber threw (fastify.wechatAuthEvents): the others still got the event') })
  return (event) => {
    log.info({ audit: event }, 'audit')
    for (const listener of events.rawListeners('audit')) {
      try {
        // An async subscriber's rejection is its failure too, not an unhandled rejection that ends the process.
        const returned = (listener as (e: AuditEvent) => unknown).call(events, event)
        if (returned instanceof Promise) returned.catch((err: unknown) => { failed(1, err) })
      } catch (err) {
        failed(1, err)
      }
    }
  }
}
