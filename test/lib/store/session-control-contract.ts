// Session control in the store: devices, exclusive device types, the session limit and the markers
// that tell an ended session's tokens why. Part of the contract every store honours (contract.ts).
import type { Test } from 'tap'
import { newSessionId, userTag, type SessionRef } from '../../../lib/ids.js'
import { DEVICE_BYTES, ENDED_SLACK, MAX_ENDED, SEP } from '../../../lib/store/redis-layout.js'
import type { NewSession, RotateInput, SessionPolicy } from '../../../lib/store/types.js'
import { statusOf } from '../../helper.js'
import type { ContractContext } from './contract.js'

const user = (sub: string): { tag: string, data: (deviceType: string, extra?: Partial<NewSession>) => NewSession, ref: () => SessionRef } => {
  const tag = userTag('wxapp', sub)
  return {
    tag,
    data: (deviceType, extra = {}) => ({ sub, openid: `o-${sub}`, sessionKey: 'k', device: { deviceType, deviceName: 'iPhone 15', ip: '203.0.113.7', userAgent: 'wechat/8.0' }, ...extra }),
    ref: () => ({ tag, sid: newSessionId() })
  }
}
const policy = (over: Partial<SessionPolicy> = {}): SessionPolicy => ({ exclusive: '', maxSessions: 10, accessTtlMs: 60_000, ...over })
const rot = (generation: number): RotateInput =>
  ({ generation, presentedHash: `h${generation}`, nextHash: `h${generation + 1}`, nonce: `n${generation + 1}`, graceMs: 10_000, ttlSec: 60, maxAgeSec: 3600 })

export function sessionControlContract (t: Test, make: (t: Test) => Promise<ContractContext>): void {
  t.test('a session keeps its device; the user lists their live sessions with it, never a secret', async (t) => {
    const { store } = await make(t)
    const u = user('lister')
    const a = u.ref()
    const b = u.ref()
    t.same(await store.createSession(a, u.data('mp'), 'h0', 60, policy()), { status: 'created', ended: 0 })
    await store.createSession(b, u.data('web', { device: { deviceType: 'web' } }), 'h0', 60, policy())
    t.equal((await store.rotateRefresh(a, rot(0))).status, 'rotated')
    const list = await store.listSessions(u.tag)
    t.equal(list.length, 2)
    const [first, second] = list.sort((x, y) => (x.sid === a.sid ? -1 : y.sid === a.sid ? 1 : 0))
    t.match(first, { sid: a.sid, deviceType: 'mp', deviceName: 'iPhone 15', ip: '203.0.113.7', userAgent: 'wechat/8.0', createdAt: Number, lastRefreshAt: Number, expiresAt: Number })
    t.match(second, { sid: b.sid, deviceType: 'web', deviceName: '', ip: '', userAgent: '', lastRefreshAt: null })
    t.notMatch(JSON.stringify(list), /"k"|"h0"|"h1"|sessionKey/, 'no session_key, no refresh digest')
    t.same(await store.listSessions(userTag('wxapp', 'nobody')), [])
  })

  t.test('device values are cut to fit a compact hash value, the user agent first, never inside a character', async (t) => {
    const { store } = await make(t)
    const u = user('long')
    const ref = u.ref()
    await store.createSession(ref, u.data('mp', { device: { deviceType: 'mp', deviceName: '华为'.repeat(20), ip: '2001:db8::1', userAgent: `x${SEP}y`.repeat(100) } }), 'h0', 60, policy())
    const [info] = await store.listSessions(u.tag)
    t.equal(info?.deviceName, '华为'.repeat(3), '20 bytes at most, whole characters only')
    const packed = [info?.deviceType, info?.deviceName, info?.ip, info?.userAgent].join(SEP)
    t.ok(Buffer.byteLength(packed) <= DEVICE_BYTES, `${Buffer.byteLength(packed)} bytes`)
    t.notOk(info?.userAgent.includes(SEP), 'the separator never gets in')
  })

  t.test('an exclusive device type ends the user\'s other sessions of that type, told why, and no other', async (t) => {
    const { store } = await make(t)
    const u = user('phones')
    const [phone1, web, phone2] = [u.ref(), u.ref(), u.ref()]
    await store.createSession(phone1, u.data('mp'), 'h0', 60, policy({ exclusive: 'same' }))
    await store.createSession(web, u.data('web'), 'h0', 60, policy())
    t.same(await store.createSession(phone2, u.data('mp'), 'h0', 60, policy({ exclusive: 'same' })), { status: 'created', ended: 1 })
    t.match(await store.checkAccess(phone1, 'j'), { reason: 'replaced', by: 'mp', endedAt: Number }, 'its access tokens are told why')
    t.match(await store.rotateRefresh(phone1, rot(0)), { status: 'ended', end: { reason: 'replaced', by: 'mp' } }, 'and its refresh token')
    t.equal(await store.getSession(phone1), null)
    t.equal(statusOf(await store.checkAccess(web, 'j')), 'ok', 'another type lives on')
    t.equal(statusOf(await store.checkAccess(phone2, 'j')), 'ok')
    await store.revokeSession(phone2)
    t.equal(await store.checkAccess(phone2, 'j'), 'revoked', 'a plain logout keeps the plain code')
  })

  t.test('exclusive over every type; refusing instead of replacing', async (t) => {
    const { store } = await make(t)
    const u = user('solo')
    const [a, b, c] = [u.ref(), u.ref(), u.ref()]
    await store.createSession(a, u.data('web'), 'h0', 60, policy())
    t.same(await store.createSession(b, u.data('mp'), 'h0', 60, policy({ exclusive: 'all' })), { status: 'created', ended: 1 })
    t.match(await store.checkAccess(a, 'j'), { reason: 'replaced', by: 'mp' })
    t.same(await store.createSession(c, u.data('mp'), 'h0', 60, policy({ exclusive: 'refuse' })), { status: 'refused', deviceType: 'mp' })
    t.equal(await store.getSession(c), null, 'a refused login creates nothing')
    t.equal(statusOf(await store.checkAccess(b, 'j')), 'ok', 'and ends nothing')
    await store.revokeSession(b)
    t.same(await store.createSession(c, u.data('mp'), 'h0', 60, policy({ exclusive: 'refuse' })), { status: 'created', ended: 0 }, 'free again once it ended')
  })

  t.test('the session limit ends the least recently refreshed, not simply the oldest', async (t) => {
    const { store, advance } = await make(t)
    const u = user('many')
    const [old, mid, fresh] = [u.ref(), u.ref(), u.ref()]
    await store.createSession(old, u.data('mp'), 'h0', 60, policy({ maxSessions: 2 }))
    await advance(20)
    await store.createSession(mid, u.data('mp'), 'h0', 60, policy({ maxSessions: 2 }))
    await advance(20)
    t.equal((await store.rotateRefresh(old, rot(0))).status, 'rotated', 'the oldest is refreshed: now the most recently active')
    await advance(20)
    t.same(await store.createSession(fresh, u.data('web'), 'h0', 60, policy({ maxSessions: 2 })), { status: 'created', ended: 1 })
    t.match(await store.checkAccess(mid, 'j'), { reason: 'limit', by: 'web' })
    t.equal(statusOf(await store.checkAccess(old, 'j')), 'ok')
    t.equal((await store.listSessions(u.tag)).length, 2)
  })

  t.test('ended markers are bounded per user, and a new login never leaves more than the limit alive', async (t) => {
    const { store } = await make(t)
    const u = user('churn')
    const refs: SessionRef[] = []
    for (let i = 0; i < MAX_ENDED + 4; i++) {
      const ref = u.ref()
      refs.push(ref)
      await store.createSession(ref, u.data('mp'), 'h0', 60, policy({ exclusive: 'same', maxSessions: 3 }))
    }
    t.equal((await store.listSessions(u.tag)).length, 1)
    t.equal(await store.checkAccess(refs[0] as SessionRef, 'j'), 'revoked', 'the oldest markers were forgotten')
    t.match(await store.checkAccess(refs[refs.length - 2] as SessionRef, 'j'), { reason: 'replaced' }, 'recent ones are kept')
  })

  t.test('past MAX_ENDED markers, the oldest go down to MAX_ENDED - ENDED_SLACK: the most recent always stay', async (t) => {
    const { store } = await make(t)
    const u = user('trimmed')
    const refs: SessionRef[] = []
    for (let i = 0; i < 2 * MAX_ENDED + 3; i++) {
      const ref = u.ref()
      refs.push(ref)
      await store.createSession(ref, u.data('mp'), 'h0', 60, policy({ exclusive: 'same' }))
      // Markers are ordered by the millisecond they were made: ones made in the same millisecond are
      // equally recent, and which of them a trim keeps is the store's choice (a fast store makes
      // several a millisecond). Each here gets its own.
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    const told = await Promise.all(refs.slice(0, -1).map(async (ref) => await store.checkAccess(ref, 'j')))
    const kept = told.filter((r) => typeof r === 'object' && 'reason' in r && r.reason === 'replaced').length
    t.ok(kept >= MAX_ENDED - ENDED_SLACK && kept <= MAX_ENDED, `${kept} markers kept`)
    t.ok(told.slice(-(MAX_ENDED - ENDED_SLACK)).every((r) => typeof r === 'object' && 'reason' in r && r.reason === 'replaced'), 'the most recent are all kept')
    t.equal(told[0], 'revoked', 'the first is forgotten')
  })

  t.test('past MAX_ENDED markers, the expired go before the oldest that still answers', async (t) => {
    const { store, advance } = await make(t)
    const u = user('outlived')
    const exclusive = policy({ exclusive: 'same' })
    const first = u.ref()
    await store.createSession(first, u.data('mp'), 'h0', 60, exclusive)
    // The next login ends `first` (a marker that answers for a minute); each after it ends one of
    // these short sessions (markers that expire with them, within two seconds): MAX_ENDED in all.
    for (let i = 0; i < MAX_ENDED; i++) await store.createSession(u.ref(), u.data('mp'), 'h0', 2, policy({ exclusive: 'same', accessTtlMs: 100 }))
    await advance(2_100)
    const [a, b] = [u.ref(), u.ref()]
    t.same(await store.createSession(a, u.data('mp'), 'h0', 60, exclusive), { status: 'created', ended: 0 }, 'the last short session expired: nothing to end')
    t.same(await store.createSession(b, u.data('mp'), 'h0', 60, exclusive), { status: 'created', ended: 1 }, 'one marker more than MAX_ENDED')
    t.match(await store.checkAccess(first, 'j'), { reason: 'replaced', by: 'mp' }, 'the oldest marker, still answering, is kept')
    t.match(await store.checkAccess(a, 'j'), { reason: 'replaced', by: 'mp' })
  })
}

export function moderationContract (t: Test, make: (t: Test) => Promise<ContractContext>): void {
  t.test('kick ends the chosen sessions (or all) for a reason their tokens are told', async (t) => {
    const { store } = await make(t)
    const u = user('kicked')
    const [a, b, c] = [u.ref(), u.ref(), u.ref()]
    for (const ref of [a, b, c]) await store.createSession(ref, u.data('mp'), 'h0', 60, policy())
    t.equal(await store.kick(u.tag, [a.sid, 'AAAAAAAAAAAA'], 'fraud-check', 60_000), 1, 'only live sessions count')
    t.match(await store.checkAccess(a, 'j'), { reason: 'kicked', by: 'fraud-check', endedAt: Number })
    t.match(await store.rotateRefresh(a, rot(0)), { status: 'ended', end: { reason: 'kicked', by: 'fraud-check' } })
    t.equal(statusOf(await store.checkAccess(b, 'j')), 'ok')
    t.equal(await store.kick(u.tag, 'all', 'password-change', 60_000), 2)
    t.match(await store.checkAccess(c, 'j'), { reason: 'kicked', by: 'password-change' })
    t.same(await store.listSessions(u.tag), [])
  })

  t.test('a ban ends every session and refuses the user\'s logins, refreshes and tokens until unbanned; logout everywhere keeps it', async (t) => {
    const { store } = await make(t)
    const u = user('banned')
    const a = u.ref()
    await store.createSession(a, u.data('mp'), 'h0', 60, policy())
    await store.ban(u.tag, { until: null, reason: 'tos-7' }, 60_000)
    const other2 = u.ref()
    t.same(await store.createSession(other2, u.data('mp'), 'h0', 60, policy()), { status: 'banned', end: { reason: 'banned', endedAt: 0, by: 'tos-7' } })
    const banned = { reason: 'banned', endedAt: 0, by: 'tos-7' }
    t.same(await store.checkAccess(a, 'j'), banned)
    t.same(await store.rotateRefresh(a, rot(0)), { status: 'ended', end: banned })
    t.same(await store.createSession(u.ref(), u.data('web'), 'h0', 60, policy()), { status: 'banned', end: banned }, 'no new session')
    t.equal(await store.revokeUser(u.tag), 0)
    t.same(await store.checkAccess(a, 'j'), banned, 'logging out everywhere does not lift the ban')
    const other = user('bystander')
    const b = other.ref()
    await store.createSession(b, other.data('mp'), 'h0', 60, policy())
    t.equal(statusOf(await store.checkAccess(b, 'j')), 'ok', 'other users are untouched')
    await store.unban(u.tag)
    const c = u.ref()
    await store.createSession(c, u.data('mp'), 'h0', 60, policy())
    await store.ban(u.tag, { until: null, reason: 'again' }, 60_000)
    await store.unban(u.tag)
    t.match(await store.checkAccess(c, 'j'), { reason: 'kicked', by: 'again' }, 'unbanned, a session the ban ended stays ended, told why')
    t.equal(await store.checkAccess(a, 'j'), 'revoked', 'unbanned: the old session stays ended (logging out everywhere forgot why)')
    t.match(await store.createSession(u.ref(), u.data('mp'), 'h0', 60, policy()), { status: 'created' }, 'and logging in works again')
  })

  t.test('a ban with an end lifts by itself', async (t) => {
    const { store, advance } = await make(t)
    const u = user('timed')
    await store.ban(u.tag, { until: Date.now() + 300, reason: 'cool-down' }, 60_000)
    t.match(await store.createSession(u.ref(), u.data('mp'), 'h0', 60, policy()), { status: 'banned', end: { reason: 'banned', by: 'cool-down', endedAt: Number } })
    await advance(400)
    t.match(await store.createSession(u.ref(), u.data('mp'), 'h0', 60, policy()), { status: 'created' })
  })
}
