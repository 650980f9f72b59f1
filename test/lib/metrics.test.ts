// lib/metrics.ts alone: the timed store keeps every operation's shape (the store contract, QR watches
// included, passes through it) and counts each by outcome; bounded labels; the reasons' counts.
import { test } from 'tap'
import { Registry } from 'prom-client'
import { createMetrics, endedCount } from '../../lib/metrics.js'
import { createMemoryStore } from '../../lib/store/memory.js'
import { storeContract } from './store/contract.js'
import { parseMetrics, valueOf } from '../prometheus.js'

test('a timed memory store honours the store contract', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false })
  storeContract(t, async (t) => {
    let now = Date.now()
    const store = metrics.instrumentStore(createMemoryStore({ now: () => now, sweepMs: 10 }))
    t.teardown(async () => await store.close())
    return { store, advance: async (ms) => { now += ms } }
  })
})

test('the timed store: promises timed by outcome, what answers at once left as it is', async (t) => {
  const registry = new Registry()
  const metrics = createMetrics({ registry, defaultMetrics: false })
  const unwatch = (): void => {}
  const store = metrics.instrumentStore({
    kind: 'test',
    watch: () => unwatch,
    ok: async () => 'value',
    down: async () => { throw Object.assign(new Error('down'), { code: 'STORE_UNAVAILABLE' }) },
    broken: () => { throw new Error('at once') },
    close: async () => {}
  })
  t.equal(store.kind, 'test')
  t.equal(store.watch(), unwatch, 'a function answering at once answers the same, not a promise')
  t.equal(await store.ok(), 'value')
  await t.rejects(store.down(), { code: 'STORE_UNAVAILABLE' })
  t.throws(() => store.broken(), /at once/)
  const s = parseMetrics(await registry.metrics())
  const count = 'wechat_auth_store_operation_duration_seconds_count'
  t.equal(valueOf(s, count, { operation: 'ok', outcome: 'ok' }), 1)
  t.equal(valueOf(s, count, { operation: 'down', outcome: 'STORE_UNAVAILABLE' }), 1)
  t.equal(valueOf(s, count, { operation: 'broken', outcome: 'error' }), 1)
  t.equal(valueOf(s, count, { operation: 'watch' }), 0, 'what answers at once is not timed')
})

test('how many sessions an audit reason says ended', async (t) => {
  t.equal(endedCount('ended 3'), 3)
  t.equal(endedCount('all devices, ended 12'), 12)
  t.equal(endedCount('this device'), 1)
  t.equal(endedCount(undefined), 1)
})

test('labels: the gateway\'s codes are always themselves, others past 64 are other; H5 logins are logins', async (t) => {
  const registry = new Registry()
  const metrics = createMetrics({ registry, defaultMetrics: false })
  for (let i = 0; i < 70; i++) metrics.error(`HOST_CODE_${i}`, '/host/route')
  metrics.error('STORE_UNAVAILABLE', '/auth/me')
  metrics.error('FST_ERR_VALIDATION', '/auth/login')
  metrics.error('a code with spaces', '/auth/login')
  metrics.audit({ event: 'session.open', via: 'h5', outcome: 'ok', deviceType: 'h5' })
  metrics.audit({ event: 'login', reason: 'h5', outcome: 'AUTH_H5_STATE_USED' })
  metrics.audit({ event: 'session.open', via: 'login', outcome: 'ok', deviceType: 'mp' })
  metrics.audit({ event: 'session.open', via: 'ticket', outcome: 'ok', deviceType: 'web' })
  const s = parseMetrics(await registry.metrics())
  t.equal(valueOf(s, 'wechat_auth_errors_total', { code: 'STORE_UNAVAILABLE' }), 1, 'a code of ours after 70 others')
  t.equal(valueOf(s, 'wechat_auth_errors_total', { code: 'FST_ERR_VALIDATION' }), 1, 'and Fastify\'s')
  t.equal(valueOf(s, 'wechat_auth_errors_total', { code: 'HOST_CODE_63' }), 1, 'the first 64 others are themselves')
  t.equal(valueOf(s, 'wechat_auth_errors_total', { code: 'other' }), 7, 'the rest, and a value of another shape, are other')
  t.equal(valueOf(s, 'wechat_auth_logins_total', { via: 'h5', outcome: 'ok' }), 1)
  t.equal(valueOf(s, 'wechat_auth_logins_total', { via: 'h5', outcome: 'AUTH_H5_STATE_USED' }), 1)
  t.equal(valueOf(s, 'wechat_auth_logins_total', { via: 'mp', outcome: 'ok' }), 1)
  t.equal(valueOf(s, 'wechat_auth_logins_total'), 3, 'a ticket exchange is not a login')
})
