// Authorization's check, without Fastify: what a requirement lets through, what it refuses with
// which code and detail, in which order, and a step-up's age by a fake clock.
import { test } from 'tap'
import { grants, requirementCheck, type Holder, type Requirement } from '../../lib/permissions.js'

const caller = (over: Partial<Holder> = {}): Holder => ({ roles: [], permissions: [], steppedUpAt: null, serviceBans: [], ...over })
const refusal = (check: (c: Holder) => void, c: Holder): unknown => {
  try {
    check(c)
    return null
  } catch (err) {
    const e = err as { code: string, statusCode: number, message: string, detail?: unknown }
    return { code: e.code, statusCode: e.statusCode, message: e.message, detail: e.detail }
  }
}

test('a held permission grants itself, its prefix* grants what starts with it, * grants all', async (t) => {
  t.ok(grants(['order:read'], 'order:read'))
  t.notOk(grants(['order:read'], 'order:refund'))
  t.ok(grants(['order:*'], 'order:refund'))
  t.ok(grants(['order:*'], 'order:refund:full'))
  t.notOk(grants(['order:*'], 'orders:read'), 'the prefix includes its colon')
  t.notOk(grants(['order:*'], 'user:read'))
  t.ok(grants(['*'], 'anything:at:all'))
  t.notOk(grants([], 'x'))
})

test('roles and permissions: all of them by default, one of them with any; the refusal names what is missing', async (t) => {
  const all = requirementCheck({ roles: ['admin', 'ops'], permissions: ['order:refund'] }, 300)
  t.equal(refusal(all, caller({ roles: ['admin', 'ops'], permissions: ['order:*'] })), null)
  t.same(refusal(all, caller({ roles: ['admin'] })), {
    code: 'AUTH_FORBIDDEN', statusCode: 403, message: 'Not allowed: role ops, permission order:refund', detail: { mode: 'all', roles: 'ops', permissions: 'order:refund' }
  })
  const any = requirementCheck({ roles: ['admin'], permissions: ['report:read'], mode: 'any' }, 300)
  t.equal(refusal(any, caller({ permissions: ['report:read'] })), null, 'one permission is enough')
  t.equal(refusal(any, caller({ roles: ['admin'] })), null, 'one role is enough')
  t.same(refusal(any, caller({ roles: ['guest'] })), {
    code: 'AUTH_FORBIDDEN', statusCode: 403, message: 'Not allowed: one of role admin, permission report:read', detail: { mode: 'any', roles: 'admin', permissions: 'report:read' }
  })
})

test('step-up: within STEP_UP_TTL, or within the route\'s own window, never longer than STEP_UP_TTL', async (t) => {
  let now = 1_000_000
  const clock = (): number => now
  const recent = requirementCheck({ stepUp: true }, 300, clock)
  const strict = requirementCheck({ stepUp: 60 }, 300, clock)
  const loose = requirementCheck({ stepUp: 3600 }, 300, clock)
  t.match(refusal(recent, caller()), { code: 'AUTH_STEP_UP_REQUIRED', statusCode: 401, detail: { maxAgeSeconds: '300' } }, 'never stepped up')
  const stepped = caller({ steppedUpAt: now })
  for (const check of [recent, strict, loose]) t.equal(refusal(check, stepped), null, 'just stepped up')
  now += 60_000
  t.match(refusal(strict, stepped), { code: 'AUTH_STEP_UP_REQUIRED', detail: { maxAgeSeconds: '60' } }, '60 s later: too old for a 60 s route')
  t.equal(refusal(recent, stepped), null, 'not for the configured 300 s')
  now += 240_000
  t.match(refusal(recent, stepped), { code: 'AUTH_STEP_UP_REQUIRED' }, 'expired after STEP_UP_TTL')
  t.match(refusal(loose, stepped), { code: 'AUTH_STEP_UP_REQUIRED', detail: { maxAgeSeconds: '300' } }, 'a route cannot stretch it past STEP_UP_TTL')
  for (const odd of [undefined, 'now', Number.NaN, Number.POSITIVE_INFINITY]) {
    t.match(refusal(recent, { ...caller(), steppedUpAt: odd as never }), { code: 'AUTH_STEP_UP_REQUIRED' }, `${String(odd)} is no step-up (bare claims put on the request by a host)`)
  }
})

test('a ban from the route\'s service comes first, then missing roles, then step-up', async (t) => {
  let now = 5_000
  const check = requirementCheck({ service: 'pay', roles: ['buyer'], stepUp: true }, 300, () => now)
  const banned = caller({ serviceBans: [{ service: 'pay', until: 10_000, reason: 'fraud' }, { service: 'chat', until: null, reason: 'spam' }] })
  t.same(refusal(check, banned), {
    code: 'AUTH_ACCOUNT_BANNED', statusCode: 403, message: 'This account is banned (fraud)', detail: { reason: 'fraud', service: 'pay', until: new Date(10_000).toISOString() }
  })
  t.match(refusal(check, { ...banned, roles: ['buyer'] }), { code: 'AUTH_ACCOUNT_BANNED' }, 'a role does not lift a ban')
  now = 10_000
  t.match(refusal(check, banned), { code: 'AUTH_FORBIDDEN' }, 'a ban past its end no longer counts')
  t.match(refusal(check, { ...banned, roles: ['buyer'] }), { code: 'AUTH_STEP_UP_REQUIRED' })
  const other = requirementCheck({ service: 'shop' }, 300)
  t.equal(refusal(other, banned), null, 'a ban from another service does not count here')
})

test('a requirement is checked when the route is built: a typo fails at boot', async (t) => {
  const bad: unknown[] = [{}, { roles: [] }, { roles: ['has space'] }, { permissions: ['a*b'] }, { stepUp: 0 }, { stepUp: false }, { mode: 'some', roles: ['a'] },
    { service: 'Pay!' }, { roles: ['a'], extra: 1 }, null]
  for (const r of bad) t.throws(() => requirementCheck(r as Requirement, 300), TypeError, JSON.stringify(r))
  t.doesNotThrow(() => requirementCheck({ permissions: ['*'] }, 300))
  t.doesNotThrow(() => requirementCheck({ service: 'pay' }, 300))
  // A value of a union is told what the union takes, not TypeBox's "Expected union value".
  t.throws(() => requirementCheck({ stepUp: 99999 }, 300), { message: 'authorize: /stepUp must be true or whole seconds from 1 to 86400' })
  t.throws(() => requirementCheck({ roles: ['a'], mode: 'some' } as unknown as Requirement, 300), { message: 'authorize: /mode must be \'all\' or \'any\'' })
})
