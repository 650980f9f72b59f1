// createAudit: the request's IP and id, as the route hands them to the flow, are added to each event;
// a subscriber that throws fails nothing.
import { test } from 'tap'
import { createAudit, outcomeOf, type AuditEvent } from '../../lib/audit.js'

test('events get the request\'s IP and id when a route passes them, none for a host\'s own call; a failing sink fails nothing', async (t) => {
  const seen: AuditEvent[] = []
  const audit = createAudit((e) => seen.push(e))
  audit({ event: 'logout', outcome: 'ok' })
  audit({ event: 'login', outcome: 'WX_CODE_USED' }, { ip: '203.0.113.9', requestId: 'r-1' })
  audit({ event: 'refresh', outcome: 'ok' }, { ip: '203.0.113.10' })
  t.same(seen, [
    { event: 'logout', outcome: 'ok' },
    { event: 'login', outcome: 'WX_CODE_USED', ip: '203.0.113.9', requestId: 'r-1' },
    { event: 'refresh', outcome: 'ok', ip: '203.0.113.10' }
  ])
  const throwing = createAudit(() => { throw new Error('subscriber bug') })
  t.doesNotThrow(() => { throwing({ event: 'kick', outcome: 'ok' }) })
  t.equal(outcomeOf(Object.assign(new Error('x'), { code: 'AUTH_FORBIDDEN' })), 'AUTH_FORBIDDEN')
  t.equal(outcomeOf(new Error('no code')), 'error')
  t.equal(outcomeOf(null), 'error')
})
