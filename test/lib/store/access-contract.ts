// Access control in the store: roles and permissions, service bans, step-up, openids. Part of the
// contract every store honours (contract.ts): what checkAccess reads in its one round trip.
import type { Test } from 'tap'
import { newSessionId, userTag, type SessionRef } from '../../../lib/ids.js'
import { MAX_SERVICE_BANS } from '../../../lib/store/redis-layout.js'
import type { LiveAccess, NewSession, SessionPolicy } from '../../../lib/store/types.js'
import type { ContractContext } from './contract.js'

const user = (sub: string): { tag: string, data: (extra?: Partial<NewSession>) => NewSession, ref: () => SessionRef } => {
  const tag = userTag('wxapp', sub)
  return {
    tag,
    data: (extra = {}) => ({ sub, openid: `o-${sub}`, sessionKey: 'old-key', device: { deviceType: 'mp' }, ...extra }),
    ref: () => ({ tag, sid: newSessionId() })
  }
}
const policy: SessionPolicy = { exclusive: '', maxSessions: 10, accessTtlMs: 60_000 }
const live = (r: unknown): LiveAccess => {
  if (typeof r !== 'object' || r === null || (r as { status?: unknown }).status !== 'ok') throw new Error(`not live: ${JSON.stringify(r)}`)
  return r as LiveAccess
}

export function accessContract (t: Test, make: (t: Test) => Promise<ContractContext>): void {
  t.test('roles and permissions: set, read by every check, replaced, forgotten; they outlive the sessions', async (t) => {
    const { store, advance } = await make(t)
    const u = user('roles')
    const ref = u.ref()
    await store.createSession(ref, u.data(), 'h0', 1, policy)
    t.match(live(await store.checkAccess(ref, 'j')), { roles: [], permissions: [], steppedUpAt: null, serviceBans: [] }, 'none by default')
    await store.setAccess(u.tag, { roles: ['admin', 'ops'], permissions: ['order:*'] })
    t.same(live(await store.checkAccess(ref, 'j')).roles, ['admin', 'ops'], 'the next check sees them')
    t.same(live(await store.checkAccess(ref, 'j')).permissions, ['order:*'])
    await store.setAccess(u.tag, { roles: ['ops'], permissions: [] })
    t.same(live(await store.checkAccess(ref, 'j')).roles, ['ops'], 'replaced, not merged')
    await advance(1_100)
    t.equal(await store.checkAccess(ref, 'j'), 'revoked', 'the session expired')
    t.match(await store.userState(u.tag), { roles: ['ops'], permissions: [] }, 'the roles did not')
    const again = u.ref()
    await store.createSession(again, u.data(), 'h0', 60, policy)
    t.same(live(await store.checkAccess(again, 'j')).roles, ['ops'], 'a new login keeps them')
    await store.setAccess(u.tag, { roles: [], permissions: [] })
    t.match(await store.userState(u.tag), { roles: [], permissions: [] }, 'none of either: forgotten')
    t.same(live(await store.checkAccess(again, 'j')).roles, [], 'the session lives on without them')
  })

  t.test('a login with roles from resolveUser replaces the stored ones; without, keeps them', async (t) => {
    const { store } = await make(t)
    const u = user('login-roles')
    await store.setAccess(u.tag, { roles: ['old'], permissions: ['p'] })
    const a = u.ref()
    await store.createSession(a, u.data(), 'h0', 60, policy)
    t.same(live(await store.checkAccess(a, 'j')).roles, ['old'], 'kept')
    const b = u.ref()
    await store.createSession(b, u.data({ access: { roles: ['new'], permissions: [] } }), 'h0', 60, policy)
    t.same(live(await store.checkAccess(a, 'j')).roles, ['new'], 'replaced for every session of the user')
    t.same(live(await store.checkAccess(a, 'j')).permissions, [])
    const c = u.ref()
    await store.createSession(c, u.data({ access: { roles: [], permissions: [] } }), 'h0', 60, policy)
    t.same(live(await store.checkAccess(c, 'j')).roles, [], 'an empty list from resolveUser clears them')
  })

  t.test('roles resolveUser gave at a login go with the user\'s last session; an operator\'s stay', async (t) => {
    const { store, advance } = await make(t)
    const u = user('login-only')
    await store.createSession(u.ref(), u.data({ access: { roles: ['member'], permissions: [] } }), 'h0', 1, policy)
    t.same((await store.userState(u.tag)).roles, ['member'])
    await advance(1_100)
    t.same((await store.userState(u.tag)).roles, [], 'gone with the session: the next login gives them again')
    const o = user('operator-set')
    await store.createSession(o.ref(), o.data({ access: { roles: ['member'], permissions: [] } }), 'h0', 1, policy)
    await store.setAccess(o.tag, { roles: ['vip'], permissions: [] })
    await advance(1_100)
    t.same((await store.userState(o.tag)).roles, ['vip'], 'set by an operator: kept')
    await t.rejects(store.setAccess(o.tag, { roles: ['a,admin'], permissions: [] }), TypeError, 'a name that would read as two is refused by the store itself')
  })

  t.test('service bans: the sessions live on, checks carry the ban, unban and expiry lift it, the number is bounded', async (t) => {
    const { store, advance } = await make(t)
    const u = user('svc')
    const ref = u.ref()
    await store.createSession(ref, u.data(), 'h0', 60, policy)
    await store.banService(u.tag, { service: 'pay', until: null, reason: 'fraud' })
    await store.banService(u.tag, { service: 'chat', until: Date.now() + 1_000, reason: 'spam' })
    const state = live(await store.checkAccess(ref, 'j'))
    t.same([...state.serviceBans].sort((a, b) => a.service.localeCompare(b.service)),
      [{ service: 'chat', until: Number(state.serviceBans.find((b) => b.service === 'chat')?.until), reason: 'spam' }, { service: 'pay', until: null, reason: 'fraud' }])
    t.equal((await store.rotateRefresh(ref, { generation: 0, presentedHash: 'h0', nextHash: 'h1', nonce: 'n1', graceMs: 1000, ttlSec: 60, maxAgeSec: 3600 })).status, 'rotated', 'refresh is not refused')
    t.same((await store.createSession(u.ref(), u.data(), 'h0', 60, policy)).status, 'created', 'nor login')
    await store.banService(u.tag, { service: 'pay', until: null, reason: 'again' })
    t.same(live(await store.checkAccess(ref, 'j')).serviceBans.filter((b) => b.service === 'pay'), [{ service: 'pay', until: null, reason: 'again' }], 'a second ban of a service replaces the first')
    await advance(1_100)
    t.same(live(await store.checkAccess(ref, 'j')).serviceBans.map((b) => b.service), ['pay'], 'a temporary ban ends by itself')
    await store.unbanService(u.tag, 'pay')
    t.same(live(await store.checkAccess(ref, 'j')).serviceBans, [], 'unbanned')
    for (let i = 0; i < MAX_SERVICE_BANS; i++) await store.banService(u.tag, { service: `s${i}`, until: null, reason: 'r' })
    await t.rejects(store.banService(u.tag, { service: 'one-more', until: null, reason: 'r' }), { code: 'SERVICE_BANS_FULL', statusCode: 409 })
    await store.banService(u.tag, { service: 's0', until: null, reason: 'changed' })
    t.equal((await store.userState(u.tag)).serviceBans.length, MAX_SERVICE_BANS, 'changing a ban needs no room')
  })

  t.test('logging out everywhere ends sessions, not roles or bans', async (t) => {
    const { store } = await make(t)
    const u = user('keeps')
    await store.createSession(u.ref(), u.data(), 'h0', 60, policy)
    await store.setAccess(u.tag, { roles: ['r'], permissions: [] })
    await store.banService(u.tag, { service: 'pay', until: null, reason: 'x' })
    t.equal(await store.revokeUser(u.tag), 1)
    t.match(await store.userState(u.tag), { roles: ['r'], ban: null, serviceBans: [{ service: 'pay' }] })
  })

  t.test('step-up: a live session takes the fresh session_key and the time; other sessions do not', async (t) => {
    const { store } = await make(t)
    const u = user('stepper')
    const [a, b] = [u.ref(), u.ref()]
    await store.createSession(a, u.data(), 'h0', 60, policy)
    await store.createSession(b, u.data(), 'h0', 60, policy)
    const before = Date.now()
    const result = await store.stepUp(a, 'fresh-key')
    t.match(result, { status: 'ok', at: Number })
    const at = (result as { at: number }).at
    t.ok(Math.abs(at - before) < 5_000, 'by the store clock, now')
    t.equal(live(await store.checkAccess(a, 'j')).steppedUpAt, at, 'every check reads it')
    t.equal(live(await store.checkAccess(b, 'j')).steppedUpAt, null, 'the user\'s other session is not stepped up')
    t.equal((await store.getSession(a))?.sessionKey, 'fresh-key', 'the session_key is the fresh one')
    t.equal((await store.getSession(b))?.sessionKey, 'old-key')
    t.match(await store.getSession(a), { sub: 'stepper', openid: 'o-stepper' }, 'the rest of the session is unchanged')
    const rot = { generation: 0, presentedHash: 'h0', nextHash: 'h1', nonce: 'n1', graceMs: 10_000, ttlSec: 60, maxAgeSec: 3600 }
    t.equal((await store.rotateRefresh(a, rot)).status, 'rotated')
    t.equal(live(await store.checkAccess(a, 'j')).steppedUpAt, at, 'a refresh keeps the step-up')
    t.equal((await store.rotateRefresh(a, { ...rot, generation: 0 })).status, 'predecessor', 'and the grace window still works')
    const second = await store.stepUp(a, 'fresher-key')
    t.equal((await store.rotateRefresh(a, { ...rot, generation: 1, presentedHash: 'h1', nextHash: 'h2', nonce: 'n2' })).status, 'rotated', 'a step-up after a refresh keeps the rotation state')
    t.equal(live(await store.checkAccess(a, 'j')).steppedUpAt, (second as { at: number }).at)
  })

  t.test('step-up of a session that ended says why; of none, revoked; of a banned user, banned', async (t) => {
    const { store } = await make(t)
    const u = user('step-ended')
    const ref = u.ref()
    await store.createSession(ref, u.data(), 'h0', 60, policy)
    await store.kick(u.tag, [ref.sid], 'fraud', 60_000)
    t.match(await store.stepUp(ref, 'k'), { reason: 'kicked', by: 'fraud' })
    t.equal(await store.stepUp(u.ref(), 'k'), 'revoked')
    await store.ban(u.tag, { until: null, reason: 'abuse' }, 60_000)
    t.match(await store.stepUp(ref, 'k'), { reason: 'banned', by: 'abuse' })
    await store.unban(u.tag)
    const fresh = u.ref()
    await store.createSession(fresh, u.data(), 'h0', 60, policy)
    await store.stepUp(fresh, 'k2')
    await store.revokeSession(fresh)
    const next = u.ref()
    await store.createSession(next, u.data(), 'h0', 60, policy)
    t.equal(live(await store.checkAccess(next, 'j')).steppedUpAt, null, 'a step-up ends with its session')
  })

  t.test('an openid is remembered with the user it logged in as, for a while', async (t) => {
    const { store, advance } = await make(t)
    t.equal(await store.subOfOpenid('wxapp', 'o-x'), null)
    await store.rememberOpenid('wxapp', 'o-x', 'user-42', 1)
    t.equal(await store.subOfOpenid('wxapp', 'o-x'), 'user-42')
    t.equal(await store.subOfOpenid('wxother', 'o-x'), null, 'per mini program')
    await advance(1_100)
    t.equal(await store.subOfOpenid('wxapp', 'o-x'), null, 'forgotten when its time is up')
  })

  t.test('the user state: roles, the account ban, the service bans', async (t) => {
    const { store } = await make(t)
    const u = user('state')
    t.same(await store.userState(u.tag), { roles: [], permissions: [], ban: null, serviceBans: [] })
    const until = Date.now() + 60_000
    await store.ban(u.tag, { until, reason: 'spam' }, 60_000)
    await store.banService(u.tag, { service: 'pay', until: null, reason: 'fraud' })
    t.same(await store.userState(u.tag), { roles: [], permissions: [], ban: { until, reason: 'spam' }, serviceBans: [{ service: 'pay', until: null, reason: 'fraud' }] })
  })
}
