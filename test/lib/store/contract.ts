// The contract every session store honours. memory.test.ts and redis.test.ts run it.
import type { Test } from 'tap'
import { type NewSession, type RotateInput, type SessionStore } from '../../../lib/store/types.js'
import { digest, newSessionId, userTag, type SessionRef } from '../../../lib/ids.js'
import { refreshTokens } from '../../../lib/refresh-tokens.js'
import { statusOf } from '../../helper.js'
import { accessContract } from './access-contract.js'
import { handoffContract } from './handoff-contract.js'
import { moderationContract, sessionControlContract } from './session-control-contract.js'

export interface ContractContext {
  store: SessionStore
  /** Lets time pass: a fake clock for memory, real waiting for Redis. */
  advance: (ms: number) => Promise<void>
}

const data = (sub: string, extra: Partial<NewSession> = {}): NewSession =>
  ({ sub, openid: `o-${sub}`, sessionKey: 'c2Vzc2lvbi1rZXktMTIzNA==', ...extra })

const refOf = (sub: string): SessionRef => ({ tag: userTag('wxapp', sub), sid: newSessionId() })

// A session's tokens as the store sees them: generation g has digest h<g>; its successor h<g+1> was
// derived with nonce n<g+1>.
const rot = (generation: number, over: Partial<RotateInput> = {}): RotateInput =>
  ({ generation, presentedHash: `h${generation}`, nextHash: `h${generation + 1}`, nonce: `n${generation + 1}`, graceMs: 10_000, ttlSec: 60, maxAgeSec: 3600, ...over })

export function storeContract (t: Test, make: (t: Test) => Promise<ContractContext>): void {
  sessionControlContract(t, make)
  moderationContract(t, make)
  accessContract(t, make)
  handoffContract(t, make)
  t.test('a session round-trips, with and without optional fields, stamped with the store clock', async (t) => {
    const { store } = await make(t)
    const a = refOf('alice')
    const b = refOf('bob')
    const before = Date.now()
    await store.createSession(a, data('alice', { unionid: 'u-alice', claims: { role: 'admin', n: 1 } }), 'h', 60)
    await store.createSession(b, data('bob'), 'h', 60)
    const got = await store.getSession(a)
    t.match(got, { ...data('alice', { unionid: 'u-alice', claims: { role: 'admin', n: 1 } }), createdAt: Number })
    t.ok(Math.abs((got?.createdAt ?? 0) - before) < 5_000, 'createdAt is now')
    const { createdAt: _c, ...bob } = (await store.getSession(b)) ?? { createdAt: 0 }
    t.same(bob, data('bob'))
    t.equal(await store.getSession(refOf('nobody')), null)
    t.equal(statusOf(await store.checkAccess(a, 'jti-1')), 'ok')
    t.equal(await store.checkAccess(refOf('nobody'), 'jti-1'), 'revoked')
  })

  t.test('rotation: the current token rotates once; its predecessor gets what derives the current one', async (t) => {
    const { store } = await make(t)
    const ref = refOf('carol')
    await store.createSession(ref, data('carol'), 'h0', 60)
    const r1 = await store.rotateRefresh(ref, rot(0))
    t.equal(r1.status, 'rotated')
    if (r1.status === 'rotated') {
      t.same(r1.session, { sub: 'carol', openid: 'o-carol' }, 'what the next access token needs, never the session_key')
      t.ok(r1.ttlMs > 55_000 && r1.ttlMs <= 60_000, 'session TTL renewed')
    }
    const again = await store.rotateRefresh(ref, rot(0, { nextHash: 'h1-sibling', nonce: 'n-sibling' }))
    t.match(again, { status: 'predecessor', nonce: 'n1', currentHash: 'h1', inGrace: true }, 'the last rotation\'s nonce and digest, nothing rotated')
    t.match(await store.rotateRefresh(ref, rot(0)), { status: 'predecessor', nonce: 'n1', currentHash: 'h1', inGrace: true }, 'as often as it comes')
    t.equal((await store.rotateRefresh(ref, rot(1))).status, 'rotated', 'successor still current')
    t.match(await store.rotateRefresh(ref, rot(1)), { status: 'predecessor', nonce: 'n2', currentHash: 'h2' })
    t.equal((await store.rotateRefresh(ref, rot(2))).status, 'rotated')
    t.equal(statusOf(await store.checkAccess(ref, 'j')), 'ok')
  })

  t.test('rotation and the predecessor hand back the token subject with every optional field, never the session_key', async (t) => {
    const { store } = await make(t)
    const ref = refOf('erin')
    await store.createSession(ref, data('user-42', { openid: 'o-erin', unionid: 'u-erin', claims: { role: 'admin', tags: ['a|b', 'c\u0001d'] } }), 'h0', 60)
    const expected = { sub: 'user-42', openid: 'o-erin', unionid: 'u-erin', claims: { role: 'admin', tags: ['a|b', 'c\u0001d'] } }
    const rotated = await store.rotateRefresh(ref, rot(0))
    t.same(rotated.status === 'rotated' && rotated.session, expected)
    const grace = await store.rotateRefresh(ref, rot(0))
    t.same(grace.status === 'predecessor' && grace.session, expected)
    t.ok(grace.status === 'predecessor' && grace.ttlMs > 55_000 && grace.ttlMs <= 60_000, 'the ttl left')
  })

  t.test('the predecessor outside the grace window is reported so; the store changes nothing', async (t) => {
    const { store, advance } = await make(t)
    const ref = refOf('dave')
    await store.createSession(ref, data('dave'), 'h0', 60)
    t.equal((await store.rotateRefresh(ref, rot(0, { graceMs: 300 }))).status, 'rotated')
    await advance(400)
    t.match(await store.rotateRefresh(ref, rot(0, { graceMs: 300 })), { status: 'predecessor', inGrace: false, currentHash: 'h1' })
    t.equal(statusOf(await store.checkAccess(ref, 'j')), 'ok', 'revoking is the caller\'s call, once it knows the token is genuine')
  })

  t.test('a rotation is delivered once an access token of its generation is used: the predecessor after the window says so', async (t) => {
    const { store, advance } = await make(t)
    const ref = refOf('dina')
    await store.createSession(ref, data('dina'), 'h0', 60)
    t.equal(statusOf(await store.checkAccess(ref, 'j', 0)), 'ok', 'a login token names no rotation')
    t.equal((await store.rotateRefresh(ref, rot(0, { graceMs: 300 }))).status, 'rotated')
    await advance(400)
    t.match(await store.rotateRefresh(ref, rot(0, { graceMs: 300 })), { status: 'predecessor', inGrace: false, delivered: false, nonce: 'n1', currentHash: 'h1' },
      'no access token of generation 1 used yet: not delivered')
    t.equal(statusOf(await store.checkAccess(ref, 'j')), 'ok', 'a token that names no generation marks nothing')
    t.equal(statusOf(await store.checkAccess(ref, 'j', 0)), 'ok', 'nor one of the generation before')
    t.equal(statusOf(await store.checkAccess(ref, 'j', 2)), 'ok', 'nor one of a generation ahead')
    t.match(await store.rotateRefresh(ref, rot(0, { graceMs: 300 })), { status: 'predecessor', delivered: false })
    t.equal(statusOf(await store.checkAccess(ref, 'j', 1)), 'ok', 'the answer to a check is the same when it marks')
    t.match(await store.rotateRefresh(ref, rot(0, { graceMs: 300 })), { status: 'predecessor', inGrace: false, delivered: true, currentHash: 'h1' })
    t.equal(statusOf(await store.checkAccess(ref, 'j', 1)), 'ok', 'marking again changes nothing')
    t.match(await store.rotateRefresh(ref, rot(0, { graceMs: 300 })), { status: 'predecessor', delivered: true })
    t.match(await store.rotateRefresh(ref, rot(0)), { status: 'predecessor', inGrace: true, delivered: true }, 'both are told: the window is the caller\'s rule')
    t.equal(statusOf(await store.checkAccess(ref, 'j')), 'ok', 'the session lives: ending it is the caller\'s call')
  })

  t.test('a late mark never marks a newer generation, and never unmarks one', async (t) => {
    const { store } = await make(t)
    const ref = refOf('ezra')
    await store.createSession(ref, data('ezra'), 'h0', 60)
    await store.rotateRefresh(ref, rot(0))
    t.equal(statusOf(await store.checkAccess(ref, 'j', 1)), 'ok')
    t.equal((await store.rotateRefresh(ref, rot(1))).status, 'rotated', 'generation 2: a new rotation starts undelivered')
    t.match(await store.rotateRefresh(ref, rot(1)), { status: 'predecessor', delivered: false })
    t.equal(statusOf(await store.checkAccess(ref, 'j', 1)), 'ok', 'a token of generation 1 used after the rotation to 2')
    t.match(await store.rotateRefresh(ref, rot(1)), { status: 'predecessor', delivered: false }, 'does not mark generation 2')
    t.equal(statusOf(await store.checkAccess(ref, 'j', 2)), 'ok')
    t.match(await store.rotateRefresh(ref, rot(1)), { status: 'predecessor', delivered: true })
    t.equal(statusOf(await store.checkAccess(ref, 'j', 1)), 'ok', 'a late token of generation 1 again')
    t.match(await store.rotateRefresh(ref, rot(1)), { status: 'predecessor', delivered: true }, 'leaves generation 2 marked')
    t.equal((await store.rotateRefresh(ref, rot(2))).status, 'rotated', 'and the current token still rotates')
    t.match(await store.rotateRefresh(ref, rot(2)), { status: 'predecessor', delivered: false, currentHash: 'h3' })
  })

  t.test('a token two or more generations behind is reported, and changes nothing', async (t) => {
    const { store } = await make(t)
    const ref = refOf('fred')
    await store.createSession(ref, data('fred'), 'h0', 60)
    for (let g = 0; g < 12; g++) t.equal((await store.rotateRefresh(ref, rot(g))).status, 'rotated')
    t.same(await store.rotateRefresh(ref, rot(10)), { status: 'behind' })
    t.same(await store.rotateRefresh(ref, rot(0, { presentedHash: 'forged' })), { status: 'behind' }, 'the store cannot tell: the caller checks the token')
    t.equal(statusOf(await store.checkAccess(ref, 'j')), 'ok', 'the session is untouched')
    t.equal((await store.rotateRefresh(ref, rot(12))).status, 'rotated')
  })

  t.test('a token of the current generation with another digest, or ahead, is invalid and harms nothing', async (t) => {
    const { store } = await make(t)
    const ref = refOf('gail')
    await store.createSession(ref, data('gail'), 'h0', 60)
    t.equal((await store.rotateRefresh(ref, rot(0, { presentedHash: 'forged' }))).status, 'invalid', 'current generation, wrong digest')
    t.equal((await store.rotateRefresh(ref, rot(-1))).status, 'invalid', 'no predecessor before the first rotation')
    t.equal((await store.rotateRefresh(ref, rot(1))).status, 'invalid', 'a generation ahead')
    await store.rotateRefresh(ref, rot(0))
    t.equal((await store.rotateRefresh(ref, rot(5))).status, 'invalid', 'far ahead')
    t.equal(statusOf(await store.checkAccess(ref, 'j')), 'ok', 'session untouched')
    t.equal((await store.rotateRefresh(ref, rot(1))).status, 'rotated')
  })

  t.test('grace window of zero: a second use is outside it', async (t) => {
    const { store, advance } = await make(t)
    const ref = refOf('gina')
    await store.createSession(ref, data('gina'), 'h0', 60)
    await store.rotateRefresh(ref, rot(0, { graceMs: 0 }))
    await advance(5)
    t.match(await store.rotateRefresh(ref, rot(0, { graceMs: 0 })), { status: 'predecessor', inGrace: false })
  })

  t.test('rotation cannot extend a session past its absolute lifetime', async (t) => {
    const { store, advance } = await make(t)
    const ref = refOf('hope')
    await store.createSession(ref, data('hope'), 'h0', 60)
    const r = await store.rotateRefresh(ref, rot(0, { maxAgeSec: 2 }))
    t.equal(r.status, 'rotated')
    if (r.status === 'rotated') t.ok(r.ttlMs <= 2_000, `capped at the max age (${r.ttlMs} ms)`)
    await advance(1_100)
    t.equal((await store.rotateRefresh(ref, rot(1, { maxAgeSec: 1 }))).status, 'invalid', 'past the max age: refused')
    t.equal(await store.checkAccess(ref, 'j'), 'revoked', 'and ended')
  })

  t.test('revokeSession ends one session only', async (t) => {
    const { store } = await make(t)
    const a = refOf('hank')
    const b = { tag: a.tag, sid: newSessionId() }
    await store.createSession(a, data('hank'), 'h', 60)
    await store.createSession(b, data('hank'), 'h', 60)
    await store.revokeSession(a)
    t.equal(await store.checkAccess(a, 'jti-a'), 'revoked')
    t.equal(await store.getSession(a), null)
    t.equal(statusOf(await store.checkAccess(b, 'jti-b')), 'ok', 'other device unaffected')
    t.equal((await store.rotateRefresh(a, rot(0, { presentedHash: 'h' }))).status, 'invalid', 'its refresh token is dead')
  })

  t.test('revokeUser ends every session of that user only', async (t) => {
    const { store } = await make(t)
    const tag = userTag('wxapp', 'ivan')
    const refs = [0, 1, 2].map(() => ({ tag, sid: newSessionId() }))
    for (const r of refs) await store.createSession(r, data('ivan'), 'h', 60)
    const other = refOf('judy')
    await store.createSession(other, data('judy'), 'h', 60)
    t.equal(await store.revokeUser(tag), 3)
    for (const r of refs) t.equal(await store.checkAccess(r, 'j'), 'revoked')
    t.equal(statusOf(await store.checkAccess(other, 'j')), 'ok')
    t.equal(await store.revokeUser(tag), 0, 'nothing left')
  })

  t.test('blacklist refuses one token until its TTL passes', async (t) => {
    const { store, advance } = await make(t)
    const ref = refOf('kate')
    await store.createSession(ref, data('kate'), 'h', 60)
    await store.blacklist(ref, 'jti-k', 1)
    t.equal(await store.checkAccess(ref, 'jti-k'), 'revoked')
    t.equal(statusOf(await store.checkAccess(ref, 'jti-other')), 'ok', 'other tokens of the session still work')
    const other = refOf('karl')
    await store.createSession(other, data('karl'), 'h', 60)
    t.equal(statusOf(await store.checkAccess(other, 'jti-k')), 'ok', 'a blacklist entry belongs to its user')
    await store.blacklist(refOf('nobody'), 'jti-n', 1) // a dead session: nothing to do
    t.equal(await store.checkAccess(refOf('nobody'), 'jti-n'), 'revoked')
    // Forgotten once its TTL has passed, by the next pass over the user in Redis (here a kick of no session).
    await advance(500)
    await store.createSession(refOf('kate'), data('kate'), 'h', 60)
    await store.kick(ref.tag, ['nosuchsessn0'], 'none', 1000)
    t.equal(await store.checkAccess(ref, 'jti-k'), 'revoked', 'still refused within its TTL')
    await advance(600)
    await store.kick(ref.tag, ['nosuchsessn0'], 'none', 1000)
    t.equal(statusOf(await store.checkAccess(ref, 'jti-k')), 'ok', 'accepted again once its TTL has passed: the entry is forgotten')
    t.equal(statusOf(await store.checkAccess(ref, 'jti-other')), 'ok')
  })

  t.test('sessions expire with their TTL', async (t) => {
    const { store, advance } = await make(t)
    const ref = refOf('liam')
    await store.createSession(ref, data('liam'), 'h0', 1)
    t.equal(statusOf(await store.checkAccess(ref, 'j')), 'ok')
    await advance(1_100)
    t.equal(await store.checkAccess(ref, 'j'), 'revoked')
    t.equal((await store.rotateRefresh(ref, rot(0))).status, 'invalid')
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

  t.test('rate-limit hits count within a window that starts at the first hit', async (t) => {
    const { store, advance } = await make(t)
    const key = `ip-${Math.random()}`
    t.match(await store.hit(key, 1_000), { current: 1 })
    t.match(await store.hit(key, 1_000), { current: 2 })
    const third = await store.hit(key, 1_000)
    t.equal(third.current, 3)
    t.ok(third.ttlMs > 0 && third.ttlMs <= 1_000, 'time left in the window')
    t.match(await store.hit(`other-${key}`, 1_000), { current: 1 }, 'keys are separate')
    await advance(600)
    const later = await store.hit(key, 1_000)
    t.equal(later.current, 4)
    t.ok(later.ttlMs <= 450, `a later hit does not restart the window (${later.ttlMs} ms left)`)
    await advance(500)
    t.match(await store.hit(key, 1_000), { current: 1 }, 'a new window, 1 s after the first hit')
  })

  t.test('refresh tokens map to their session', async (t) => {
    const { store } = await make(t)
    const ref = refOf('mia')
    const token = refreshTokens('a-jwt-secret-that-is-long-enough-0123456789').first(ref)
    await store.createSession(ref, data('mia'), digest(token), 60)
    t.equal((await store.rotateRefresh(ref, rot(0, { presentedHash: digest(token) }))).status, 'rotated')
    t.equal(await store.ping(), undefined)
  })

  t.test('credentials: shared value with its times, one renewal lock at a time, released by its owner only', async (t) => {
    const { store, advance } = await make(t)
    const name = `wx${Math.random()}`
    t.equal(await store.getCredential(name), null)
    t.equal(await store.lockCredential(name, 'a', 5_000), true, 'the first instance takes the lock')
    t.equal(await store.lockCredential(name, 'b', 5_000), false, 'others do not')
    await store.unlockCredential(name, 'b')
    t.equal(await store.lockCredential(name, 'c', 5_000), false, 'only the owner releases it')
    const cred = { value: 'token|with\u0001odd chars', expiresAt: Date.now() + 60_000, refreshAt: Date.now() + 30_000 }
    await store.saveCredential(name, cred, 'a')
    t.same(await store.getCredential(name), cred, 'round-trips exactly')
    t.equal(await store.lockCredential(name, 'b', 5_000), true, 'saving released the lock')
    await store.saveCredential(name, { ...cred, value: 'newer' }, 'a')
    t.equal((await store.getCredential(name))?.value, 'newer', 'a save by a former owner still stores the value')
    t.equal(await store.lockCredential(name, 'c', 5_000), false, 'but leaves the current owner\'s lock alone')
    await store.unlockCredential(name, 'b')
    t.equal(await store.lockCredential(name, 'c', 1_000), true)
    await advance(1_100)
    t.equal(await store.lockCredential(name, 'd', 1_000), true, 'a lock whose holder died expires')
    await store.saveCredential(name, { value: 'short', expiresAt: Date.now() + 1_000, refreshAt: Date.now() }, 'd')
    await advance(1_100)
    t.equal(await store.getCredential(name), null, 'a credential is gone once it expires')
    await store.saveCredential(name, { value: 'dead', expiresAt: Date.now() - 1, refreshAt: 0 }, 'x')
    t.equal(await store.getCredential(name), null, 'an expired credential is not stored')
  })
}
