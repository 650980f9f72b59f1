// The Redis store's one-time tickets and web QR logins. A ticket is one key, taken with a script
// (read and deleted at once); a QR login is one hash whose every step is one script
// (redis-handoff-scripts.ts). Watchers are told of a change made on any instance at once when the
// store has the access check's tracked connection (ACCESS_CHECK=tracked: Redis pushes the change,
// redis-access-cache.ts), and poll the hash's version besides, every QR_WATCH_TRACKED_MS (a silent
// connection pushes nothing); without it they poll every QR_WATCH_MS. One HGET per watcher and
// interval, never a busy loop.
import { QR_FIELDS as F } from './redis-handoff-scripts.js'
import type { Context } from './redis-context.js'
import type { HandoffStore, QrOutcome, QrRecord, QrRefusal, QrState, TicketGrant } from './handoff-types.js'
import { viewAt } from './memory-handoff.js'

/** How often a watcher reads a QR login's version. */
export const QR_WATCH_MS = 500
/** How often, when Redis pushes changes. */
export const QR_WATCH_TRACKED_MS = 5_000

const STATES = new Set<string>(['pending', 'scanned', 'confirmed', 'cancelled', 'expired'])

/** A QR login's hash (flat HGETALL pairs) as a record, shown as at `now`. */
function recordOf (flat: unknown[], now: number): QrRecord {
  const h: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) h[String(flat[i])] = String(flat[i + 1])
  const state = (STATES.has(h[F.state] ?? '') ? h[F.state] : 'expired') as QrState
  const tag = h[F.scannerTag]
  return viewAt({
    state,
    appid: h[F.appid] ?? '',
    createdAt: Number(h[F.createdAt]),
    expiresAt: Number(h[F.expiresAt]),
    ip: h[F.ip] ?? '',
    userAgent: h[F.userAgent] ?? '',
    scanner: tag === undefined ? null : { tag, sid: h[F.scannerSid] ?? '' },
    scannedAt: h[F.scannedAt] === undefined ? null : Number(h[F.scannedAt]),
    collected: h[F.collected] === '1'
  }, now)
}

function outcomeOf (reply: unknown): QrOutcome {
  const [status, ...rest] = reply as unknown[]
  if (status === 'ok') return { status: 'ok', record: recordOf(rest, Date.now()) }
  const [why, state] = rest as string[]
  return state === undefined || state === '' ? { status: 'refused', why: why as QrRefusal } : { status: 'refused', why: why as QrRefusal, state: state as QrState }
}

export function redisHandoff ({ keys, send, run, guard, accessCache }: Context): HandoffStore {
  return {
    async putTicket (ticketHash, grant, ttlMs) {
      const key = keys.ticket(ticketHash)
      await guard(async () => await send(key, ['SET', key, JSON.stringify(grant), 'PX', String(ttlMs)]))
    },

    async takeTicket (ticketHash) {
      const taken = await guard(async () => await run('wxauthTake', [keys.ticket(ticketHash)]))
      if (!Array.isArray(taken)) return null
      const [value, ttlMs] = taken as [string, number]
      return { grant: JSON.parse(value) as TicketGrant, ttlMs: Number(ttlMs) }
    },

    async createQr (id, qr, keepMs) {
      const flat = await guard(async () => await run('wxauthQrCreate', [keys.qr(id)], qr.appid, qr.secretHash, qr.ttlMs, keepMs, qr.ip, qr.userAgent))
      return recordOf(flat as unknown[], Date.now())
    },

    async getQr (id) {
      const key = keys.qr(id)
      const flat = await guard(async () => await send(key, ['HGETALL', key])) as unknown[]
      return flat.length === 0 ? null : recordOf(flat, Date.now())
    },

    async stepQr (id, step, appid, by) {
      return outcomeOf(await guard(async () => await run('wxauthQrStep', [keys.qr(id)], step, appid, by.tag, by.sid)))
    },

    async collectQr (id, secretHash) {
      return outcomeOf(await guard(async () => await run('wxauthQrCollect', [keys.qr(id)], secretHash)))
    },

    async uncollectQr (id) {
      await guard(async () => await run('wxauthQrUncollect', [keys.qr(id)]))
    },

    watchQr (id, listener) {
      const key = keys.qr(id)
      const pushed = accessCache?.watch(key, listener)
      let seen: unknown
      let failing = false
      let busy = false
      const timer = setInterval(() => {
        if (busy) return // a slow Redis: one read at a time
        busy = true
        guard(async () => await send(key, ['HGET', key, F.version]))
          .then((version) => {
            // The first read too: a change made before it is not missed (listeners read the state);
            // and the first after an outage, which the listener's own read saw.
            if (version !== seen || failing) listener()
            seen = version
            failing = false
          }, () => {
            if (!failing) listener() // an outage, told once: the listener's read fails too, and says so
            failing = true
          })
          .finally(() => { busy = false })
      }, pushed === undefined ? QR_WATCH_MS : QR_WATCH_TRACKED_MS)
      timer.unref()
      return () => { clearInterval(timer); pushed?.() }
    }
  }
}
