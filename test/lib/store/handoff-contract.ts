// One-time tickets and web QR logins in the store: part of the contract every store honours
// (contract.ts), for memory, Redis, Cluster and Sentinel.
import type { Test } from 'tap'
import { newSessionId, randomId, userTag, type SessionRef } from '../../../lib/ids.js'
import type { QrOutcome } from '../../../lib/store/types.js'
import type { ContractContext } from './contract.js'

const ref = (sub: string): SessionRef => ({ tag: userTag('wxapp', sub), sid: newSessionId() })
const qr = (ttlMs = 60_000) => ({ appid: 'wxapp', secretHash: 'secret-digest', ttlMs, ip: '203.0.113.9', userAgent: 'Browser/1.0' })
const why = (o: QrOutcome): string => o.status === 'ok' ? `ok ${o.record.state}` : `${o.why}${o.state === undefined ? '' : ` ${o.state}`}`

export function handoffContract (t: Test, make: (t: Test) => Promise<ContractContext>): void {
  t.test('a ticket is taken once: of 20 concurrent takers exactly one gets its grant', async (t) => {
    const { store } = await make(t)
    const grant = { appid: 'wxapp', sub: 'alice', sid: newSessionId(), audience: 'web' }
    await store.putTicket('tk1', grant, 60_000)
    const taken = await Promise.all(Array.from({ length: 20 }, async () => await store.takeTicket('tk1')))
    const won = taken.filter((g) => g !== null)
    t.same(won.map((g) => g.grant), [grant], 'one taker, the grant as put')
    t.ok((won[0]?.ttlMs ?? 0) > 55_000 && (won[0]?.ttlMs ?? 0) <= 60_000, 'with the time it had left')
    t.equal(await store.takeTicket('tk1'), null, 'gone after')
    t.equal(await store.takeTicket('never'), null)
  })

  t.test('a ticket put back for the time it had left is taken again, and expires then', async (t) => {
    const { store, advance } = await make(t)
    const grant = { appid: 'wxapp', sub: 'carl', sid: newSessionId(), audience: 'web' }
    await store.putTicket('tk3', grant, 1_000)
    await advance(400)
    const taken = await store.takeTicket('tk3')
    t.ok(taken !== null && taken.ttlMs > 0 && taken.ttlMs <= 600, `${String(taken?.ttlMs)} ms left`)
    await store.putTicket('tk3', grant, taken?.ttlMs ?? 0)
    t.same((await store.takeTicket('tk3'))?.grant, grant, 'back')
    await store.putTicket('tk3', grant, taken?.ttlMs ?? 0)
    await advance(800)
    t.equal(await store.takeTicket('tk3'), null, 'no longer than it had')
  })

  t.test('a collect undone: collectable again, once; nothing for one not collected, expired or gone', async (t) => {
    const { store, advance } = await make(t)
    const alice = ref('alice')
    const id = randomId(16)
    await store.createQr(id, qr(), 60_000)
    await store.stepQr(id, 'scan', 'wxapp', alice)
    await store.stepQr(id, 'confirm', 'wxapp', alice)
    await store.uncollectQr(id)
    t.match(await store.getQr(id), { state: 'confirmed', collected: false }, 'not collected: unchanged')
    t.equal(why(await store.collectQr(id, 'secret-digest')), 'ok confirmed')
    await store.uncollectQr(id)
    t.match(await store.getQr(id), { state: 'confirmed', collected: false, scanner: alice }, 'undone')
    const again = await Promise.all([1, 2, 3].map(async () => await store.collectQr(id, 'secret-digest')))
    t.same(again.map(why).sort(), ['collected confirmed', 'collected confirmed', 'ok confirmed'], 'collected once again')
    await store.uncollectQr('nope')
    t.equal(await store.getQr('nope'), null, 'a QR login that is gone is not made again')
    const late = randomId(16)
    await store.createQr(late, qr(300), 60_000)
    await store.stepQr(late, 'scan', 'wxapp', alice)
    await store.stepQr(late, 'confirm', 'wxapp', alice)
    t.equal(why(await store.collectQr(late, 'secret-digest')), 'ok confirmed')
    await advance(600)
    await store.uncollectQr(late)
    t.equal(why(await store.collectQr(late, 'secret-digest')), 'expired', 'undone after its expiry: expired')
  })

  t.test('a ticket expires', async (t) => {
    const { store, advance } = await make(t)
    await store.putTicket('tk2', { appid: 'wxapp', sub: 'bob', sid: newSessionId(), audience: 'web' }, 300)
    await advance(600)
    t.equal(await store.takeTicket('tk2'), null)
  })

  t.test('a QR login: pending, scanned, confirmed, collected once; each refusal says why', async (t) => {
    const { store } = await make(t)
    const id = randomId(16)
    const [alice, bob] = [ref('alice'), ref('bob')]
    const made = await store.createQr(id, qr(), 60_000)
    t.match(made, { state: 'pending', appid: 'wxapp', ip: '203.0.113.9', userAgent: 'Browser/1.0', scanner: null, scannedAt: null, collected: false })
    t.ok(made.expiresAt - made.createdAt === 60_000 && Math.abs(made.createdAt - Date.now()) < 5_000, 'by the store clock')
    t.equal(why(await store.stepQr(id, 'confirm', 'wxapp', alice)), 'state pending', 'confirm before scan')
    t.equal(why(await store.collectQr(id, 'secret-digest')), 'state pending', 'collect before confirm')
    t.equal(why(await store.stepQr(id, 'scan', 'wxother', alice)), 'wrong-app', 'another mini program\'s user')
    const scanned = await store.stepQr(id, 'scan', 'wxapp', alice)
    t.match(scanned, { status: 'ok', record: { state: 'scanned', scanner: alice, scannedAt: Number } })
    t.equal(why(await store.stepQr(id, 'scan', 'wxapp', alice)), 'ok scanned', 'the same user scans again')
    t.equal(why(await store.stepQr(id, 'scan', 'wxapp', bob)), 'other-user scanned', 'a second user')
    t.equal(why(await store.stepQr(id, 'confirm', 'wxapp', bob)), 'other-user scanned')
    t.equal(why(await store.stepQr(id, 'confirm', 'wxapp', alice)), 'ok confirmed')
    t.equal(why(await store.stepQr(id, 'cancel', 'wxapp', alice)), 'state confirmed', 'no cancel after confirm')
    t.equal(why(await store.collectQr(id, 'wrong')), 'wrong-secret')
    const collected = await store.collectQr(id, 'secret-digest')
    t.match(collected, { status: 'ok', record: { state: 'confirmed', collected: true, scanner: alice } })
    t.equal(why(await store.collectQr(id, 'secret-digest')), 'collected confirmed', 'exactly once')
    t.match(await store.getQr(id), { state: 'confirmed', collected: true })
    t.equal(await store.getQr('nope'), null)
    t.equal(why(await store.stepQr('nope', 'scan', 'wxapp', alice)), 'missing')
    t.equal(why(await store.collectQr('nope', 'x')), 'missing')
  })

  t.test('a QR login cancelled, and one expired; concurrent scans by two users: one wins', async (t) => {
    const { store, advance } = await make(t)
    const [alice, bob] = [ref('alice'), ref('bob')]
    const c = randomId(16)
    await store.createQr(c, qr(), 60_000)
    await store.stepQr(c, 'scan', 'wxapp', alice)
    t.equal(why(await store.stepQr(c, 'cancel', 'wxapp', alice)), 'ok cancelled')
    t.equal(why(await store.collectQr(c, 'secret-digest')), 'state cancelled')
    const race = randomId(16)
    await store.createQr(race, qr(), 60_000)
    const outcomes = await Promise.all([alice, bob, alice, bob].map(async (who) => await store.stepQr(race, 'scan', 'wxapp', who)))
    t.equal(new Set(outcomes.filter((o) => o.status === 'ok').map((o) => o.status === 'ok' && o.record.scanner?.tag)).size, 1, 'one scanner')
    const e = randomId(16)
    await store.createQr(e, qr(300), 60_000)
    await store.stepQr(e, 'scan', 'wxapp', alice)
    await advance(600)
    t.match(await store.getQr(e), { state: 'expired' }, 'told expired while kept')
    t.equal(why(await store.stepQr(e, 'confirm', 'wxapp', alice)), 'expired')
    t.equal(why(await store.collectQr(e, 'secret-digest')), 'expired')
    t.match(await store.getQr(c), { state: 'cancelled' }, 'an ended one stays as it ended')
  })

  t.test('watchers hear of every change, from this or another store on the same data', async (t) => {
    const { store } = await make(t)
    const id = randomId(16)
    await store.createQr(id, qr(), 60_000)
    let heard = 0
    let wake: () => void = () => {}
    const stop = store.watchQr(id, () => { heard++; wake() })
    t.teardown(stop)
    const next = async (): Promise<void> => { await new Promise<void>((resolve) => { wake = resolve }) }
    const changed = next()
    await store.stepQr(id, 'scan', 'wxapp', ref('alice'))
    await changed
    t.ok(heard >= 1, 'the scan was heard')
    stop()
  })
}
