// createAudit: the request's IP and id are added from the context the HTTP layer sets; a subscriber
// that throws fails nothing.
import { test } from 'tap'
import { auditContext, createAudit, outcomeOf, type AuditEvent } from '../../lib/audit.js'

test('events get the current request\'s IP and id, none outside a request; a failing sink fails nothing', async (t) => {
  const seen: AuditEvent[] = []
  const audit = createAudit((e) => seen.push(e))
  audit({ event: 'logout', outcome: 'ok' })
  auditContext.run({ ip: '203.0.113.9', requestId: 'r-1' }, () => { audit({ event: 'login', outcome: 'WX_CODE_USED' }) })
  await auditContext.run({ ip: '203.0.113.10', requestId: 'r-2' }, async () => {
    await Promise.resolve()
    audit({ event: 'refresh', outcome: 'ok' })
  })
  t.same(seen, [
    { event: 'logout', outcome: 'ok' },
    { event: 'login', outcome: 'WX_CODE_USED', ip: '203.0.113.9', requestId: 'r-1' },
    { event: 'refresh', outcome: 'ok', ip: '203.0.113.10', requestId: 'r-2' }
  ], 'across awaits too')
  const throwing = createAudit(() => { throw new Error('subscriber bug') })
  t.doesNotThrow(() => { throwing({ event: 'kick', outcome: 'ok' }) })
  t.equal(outcomeOf(Object.assign(new Error('x'), { code: 'AUTH_FORBIDDEN' })), 'AUTH_FORBIDDEN')
  t.equal(outcomeOf(new Error('no code')), 'error')
  t.equal(outcomeOf(null), 'error')
})
