// The memory store's tickets and QR logins, as the Redis store's scripts keep them
// (redis-handoff.ts): the same transitions, with an in-process emitter for watchers.
import { EventEmitter } from 'node:events'
import type { SessionRef } from '../ids.js'
import type { HandoffStore, QrOutcome, QrRecord, QrStep, TicketGrant } from './handoff-types.js'

interface Entry<T> { value: T, expiresAt: number }
interface QrEntry { record: QrRecord, secretHash: string, forgetAt: number }

/** A record as read at `now`: a pending or scanned one past its expiry, or a confirmed one never collected, is expired. */
export function viewAt (record: QrRecord, now: number): QrRecord {
  const open = record.state === 'pending' || record.state === 'scanned' || (record.state === 'confirmed' && !record.collected)
  return open && record.expiresAt <= now ? { ...record, state: 'expired' } : record
}

/** A user's step on a QR login at `now` (the Lua script wxauthQrStep decides the same). */
export function stepOf (current: QrRecord, step: QrStep, appid: string, by: SessionRef, now: number): QrOutcome {
  const record = viewAt(current, now)
  if (record.state === 'expired') return { status: 'refused', why: 'expired' }
  if (record.appid !== appid) return { status: 'refused', why: 'wrong-app' }
  const mine = record.scanner?.tag === by.tag
  if (record.scanner !== null && !mine) return { status: 'refused', why: 'other-user', state: record.state }
  if (step === 'scan') {
    if (record.state === 'pending') return { status: 'ok', record: { ...record, state: 'scanned', scanner: by, scannedAt: now } }
    return record.state === 'scanned' ? { status: 'ok', record } : { status: 'refused', why: 'state', state: record.state }
  }
  if (record.state !== 'scanned') return { status: 'refused', why: 'state', state: record.state }
  return { status: 'ok', record: { ...record, state: step === 'confirm' ? 'confirmed' : 'cancelled', scanner: by } }
}

/** A collect at `now` (the Lua script wxauthQrCollect decides the same). */
export function collectOf (current: QrRecord, secretOk: boolean, now: number): QrOutcome {
  if (!secretOk) return { status: 'refused', why: 'wrong-secret' }
  const record = viewAt(current, now)
  if (record.collected) return { status: 'refused', why: 'collected', state: record.state }
  if (record.state === 'expired') return { status: 'refused', why: 'expired' }
  if (record.state !== 'confirmed') return { status: 'refused', why: 'state', state: record.state }
  return { status: 'ok', record: { ...record, collected: true } }
}

export function memoryHandoff (now: () => number): HandoffStore & { sweep: () => void, clear: () => void } {
  const tickets = new Map<string, Entry<TicketGrant>>()
  const qrs = new Map<string, QrEntry>()
  const changes = new EventEmitter()
  changes.setMaxListeners(0)
  const live = (id: string): QrEntry | undefined => {
    const e = qrs.get(id)
    if (e !== undefined && e.forgetAt <= now()) qrs.delete(id)
    return e !== undefined && e.forgetAt > now() ? e : undefined
  }
  const save = (id: string, e: QrEntry, outcome: QrOutcome): QrOutcome => {
    if (outcome.status === 'ok') {
      e.record = outcome.record
      changes.emit(id)
    }
    return outcome.status === 'ok' ? { status: 'ok', record: { ...outcome.record } } : outcome
  }
  return {
    async putTicket (ticketHash, grant, ttlMs) { tickets.set(ticketHash, { value: { ...grant }, expiresAt: now() + ttlMs }) },
    async takeTicket (ticketHash) {
      const e = tickets.get(ticketHash)
      tickets.delete(ticketHash)
      return e !== undefined && e.expiresAt > now() ? { grant: e.value, ttlMs: e.expiresAt - now() } : null
    },
    async createQr (id, qr, keepMs) {
      const t = now()
      const record: QrRecord = { state: 'pending', appid: qr.appid, createdAt: t, expiresAt: t + qr.ttlMs, ip: qr.ip, userAgent: qr.userAgent, scanner: null, scannedAt: null, collected: false }
      qrs.set(id, { record, secretHash: qr.secretHash, forgetAt: t + qr.ttlMs + keepMs })
      return { ...record }
    },
    async getQr (id) {
      const e = live(id)
      return e === undefined ? null : { ...viewAt(e.record, now()) }
    },
    async stepQr (id, step, appid, by) {
      const e = live(id)
      return e === undefined ? { status: 'refused', why: 'missing' } : save(id, e, stepOf(e.record, step, appid, { ...by }, now()))
    },
    async collectQr (id, secretHash) {
      const e = live(id)
      return e === undefined ? { status: 'refused', why: 'missing' } : save(id, e, collectOf(e.record, e.secretHash === secretHash, now()))
    },
    async uncollectQr (id) {
      const e = live(id)
      if (e?.record.collected === true) save(id, e, { status: 'ok', record: { ...e.record, collected: false } })
    },
    watchQr (id, listener) {
      changes.on(id, listener)
      return () => { changes.off(id, listener) }
    },
    sweep () {
      const t = now()
      for (const [k, e] of tickets) if (e.expiresAt <= t) tickets.delete(k)
      for (const [k, e] of qrs) if (e.forgetAt <= t) qrs.delete(k)
    },
    clear () {
      tickets.clear()
      qrs.clear()
      changes.removeAllListeners()
    }
  }
}
