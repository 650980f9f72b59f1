// The contract every session store honours. memory.test.ts and redis.test.ts run it.
import type { Test } from 'tap'
import { StoreUnavailableError } from '../../../lib/errors.js'
import type { SessionData, SessionStore } from '../../../lib/store/types.js'
import { digest, newRefreshToken, newSessionId, userTag, type SessionRef } from '../../../lib/tokens.js'

export interface ContractContext {
  store: SessionStore
  /** Lets time pass: a fake clock for memory, real waiting for Redis. */
  advance: (ms: number) => Promise<void>
}

const data = (sub: string, extra: Partial<SessionData> = {}): SessionData =>
  ({ sub, openid: `o-${sub}`, sessionKey: 'c2Vzc2lvbi1rZXktMTIzNA==', createdAt: 1700000000000, ...extra })

const refOf = (sub: string): SessionRef => ({ tag: userTag('wxapp', sub), sid: newSessionId() })

export function storeContract (t: Test, make: (t: Test) => Promise<ContractContext>): void {
  t.test('a session round-trips, with and without optional fields', async (t) => {
    const { store } = await make(t)
    const a = refOf('alice')
    const b = refOf('bob')
    await store.createSession(a, data('alice', { unionid: 'u-alice', claims: { role: 'admin', n: 1 } }), 'h', 60)
    await store.createSession(b, data('bob'), 'h', 60)
    t.same(await store.getSession(a), data('alice', { unionid: 'u-alice', claims: { role: 'admin', n: 1 } }))
    t.same(await store.getSession(b), data('bob'))
    t.equal(await store.getSession(refOf('nobody')), null)
    t.equal(await store.checkAccess(a, 'jti-1'), 'ok')
    t.equal(await store.checkAccess(refOf('nobody'), 'jti-1'), 'revoked')
  })

  t.test('rotation: current token rotates once; predecessor in grace gets the same successor', async (t) => {
    const { store } = await make(t)
    const ref = refOf('carol')
    await store.createSession(ref, data('carol'), 'h0', 60)
    const input = (presented: string, next: string, nowMs: number, sealed = `sealed-${next}`) =>
      ({ presentedHash: presented, nextHash: next, sealedSuccessor: sealed, nowMs, graceMs: 10_000, ttlSec: 60 })

    const r1 = await store.rotateRefresh(ref, input('h0', 'h1', 1_000))
    t.equal(r1.status, 'rotated')
    if (r1.status === 'rotated') {
      t.same(r1.session, data('carol'))
      t.ok(r1.ttlMs > 55_000 && r1.ttlMs <= 60_000, 'session TTL renewed')
    }
    const again = await store.rotateRefresh(ref, input('h0', 'h1-sibling', 5_000, 'other'))
    t.equal(again.status, 'grace')
    if (again.status === 'grace') t.equal(again.sealedSuccessor, 'sealed-h1', 'the sealed successor of the first rotation')
    t.equal((await store.rotateRefresh(ref, input('h1', 'h2', 6_000))).status, 'rotated', 'successor still current')
    t.equal(await store.checkAccess(ref, 'j'), 'ok')
  })

  t.test('reuse outside the grace window revokes the session', async (t) => {
    const { store } = await make(t)
    const ref = refOf('dave')
    await store.createSession(ref, data('dave'), 'h0', 60)
    const input = (presented: string, next: string, nowMs: number) =>
      ({ presentedHash: presented, nextHash: next, sealedSuccessor: 's', nowMs, graceMs: 10_000, ttlSec: 60 })
    t.equal((await store.rotateRefresh(ref, input('h0', 'h1', 0))).status, 'rotated')
    t.equal((await store.rotateRefresh(ref, input('h0', 'hx', 10_001))).status, 'reused')
    t.equal(await store.getSession(ref), null, 'session gone')
    t.equal(await store.checkAccess(ref, 'j'), 'revoked', 'its access tokens stop working')
    t.equal((await store.rotateRefresh(ref, input('h1', 'h2', 10_002))).status, 'invalid', 'successor dead too')
  })

  t.test('an older token (two rotations back) is reuse even inside the window', async (t) => {
    const { store } = await make(t)
    const ref = refOf('erin')
    await store.createSession(ref, data('erin'), 'h0', 60)
    const input = (presented: string, next: string) =>
      ({ presentedHash: presented, nextHash: next, sealedSuccessor: 's', nowMs: 0, graceMs: 10_000, ttlSec: 60 })
    await store.rotateRefresh(ref, input('h0', 'h1'))
    await store.rotateRefresh(ref, input('h1', 'h2'))
    t.equal((await store.rotateRefresh(ref, input('h0', 'hx'))).status, 'reused')
  })

  t.test('an unknown token of a live session is invalid and harms nothing', async (t) => {
    const { store } = await make(t)
    const ref = refOf('frank')
    await store.createSession(ref, data('frank'), 'h0', 60)
    const r = await store.rotateRefresh(ref, { presentedHash: 'forged', nextHash: 'n', sealedSuccessor: 's', nowMs: 0, graceMs: 10_000, ttlSec: 60 })
    t.equal(r.status, 'invalid')
    t.equal(await store.checkAccess(ref, 'j'), 'ok', 'session untouched')
  })

  t.test('grace window of zero: any second use is reuse', async (t) => {
    const { store } = await make(t)
    const ref = refOf('gina')
    await store.createSession(ref, data('gina'), 'h0', 60)
    const input = (presented: string, next: string) =>
      ({ presentedHash: presented, nextHash: next, sealedSuccessor: 's', nowMs: 0, graceMs: 0, ttlSec: 60 })
    await store.rotateRefresh(ref, input('h0', 'h1'))
    t.equal((await store.rotateRefresh(ref, { ...input('h0', 'h2'), nowMs: 1 })).status, 'reused')
  })

  t.test('revokeSession ends one session and blacklists the token', async (t) => {
    const { store } = await make(t)
    const a = refOf('hank')
    const b = { tag: a.tag, sid: newSessionId() }
    await store.createSession(a, data('hank'), 'h', 60)
    await store.createSession(b, data('hank'), 'h', 60)
    await store.revokeSession(a, 'jti-a', 60)
    t.equal(await store.checkAccess(a, 'jti-other'), 'revoked')
    t.equal(await store.checkAccess(b, 'jti-b'), 'ok', 'other device unaffected')
    t.equal(await store.checkAccess(b, 'jti-a'), 'revoked', 'the blacklisted jti is refused anywhere')
  })

  t.test('revokeUser ends every session of that user only', async (t) => {
    const { store } = await make(t)
    const tag = userTag('wxapp', 'ivan')
    const refs = [0, 1, 2].map(() => ({ tag, sid: newSessionId() }))
    for (const r of refs) await store.createSession(r, data('ivan'), 'h', 60)
    const other = refOf('judy')
    await store.createSession(other, data('judy'), 'h', 60)
    t.equal(await store.revokeUser(tag, 'jti-x', 60), 3)
    for (const r of refs) t.equal(await store.checkAccess(r, 'j'), 'revoked')
    t.equal(await store.checkAccess(other, 'j'), 'ok')
    t.equal(await store.revokeUser(tag), 0, 'nothing left')
  })

  t.test('blacklist refuses one token until its TTL passes', async (t) => {
    const { store, advance } = await make(t)
    const ref = refOf('kate')
    await store.createSession(ref, data('kate'), 'h', 60)
    await store.blacklist(ref.tag, 'jti-k', 1)
    t.equal(await store.checkAccess(ref, 'jti-k'), 'revoked')
    t.equal(await store.checkAccess(ref, 'jti-other'), 'ok')
    await advance(1_100)
    t.equal(await store.checkAccess(ref, 'jti-k'), 'ok', 'blacklist entries expire')
  })

  t.test('sessions expire with their TTL', async (t) => {
    const { store, advance } = await make(t)
    const ref = refOf('liam')
    await store.createSession(ref, data('liam'), 'h0', 1)
    t.equal(await store.checkAccess(ref, 'j'), 'ok')
    await advance(1_100)
    t.equal(await store.checkAccess(ref, 'j'), 'revoked')
    t.equal((await store.rotateRefresh(ref, { presentedHash: 'h0', nextHash: 'h1', sealedSuccessor: 's', nowMs: 0, graceMs: 0, ttlSec: 60 })).status, 'invalid')
  })

  t.test('login codes: claimed once, pending while exchanged, used after acceptance, free after failure', async (t) => {
    const { store, advance } = await make(t)
    const id = digest(`code-${Math.random()}`)
    t.equal(await store.claimCode(id, 5_000), 'claimed')
    t.equal(await store.claimCode(id, 5_000), 'pending')
    await store.settleCode(id, false, 0)
    t.equal(await store.claimCode(id, 5_000), 'claimed', 'a failed exchange may be retried')
    await store.settleCode(id, true, 1_000)
    t.equal(await store.claimCode(id, 5_000), 'used')
    await advance(1_100)
    t.equal(await store.claimCode(id, 5_000), 'claimed', 'markers expire')
    const stale = digest(`stale-${Math.random()}`)
    t.equal(await store.claimCode(stale, 1_000), 'claimed')
    await advance(1_100)
    t.equal(await store.claimCode(stale, 1_000), 'claimed', 'a pending marker of a crashed exchange expires')
  })

  t.test('refresh tokens map to their session', async (t) => {
    const { store } = await make(t)
    const ref = refOf('mia')
    const token = newRefreshToken(ref)
    await store.createSession(ref, data('mia'), digest(token), 60)
    const r = await store.rotateRefresh(ref, { presentedHash: digest(token), nextHash: 'n', sealedSuccessor: 's', nowMs: 0, graceMs: 0, ttlSec: 60 })
    t.equal(r.status, 'rotated')
    t.ok(await store.ping() === undefined)
  })
}

export { StoreUnavailableError }
