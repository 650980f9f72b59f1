// lib/default-metrics.ts: Node's default metrics are made once per process, however many gateways
// register them, so closing a gateway leaves no event-loop monitor or GC observer behind it.
import { createRequire } from 'node:module'
import { test } from 'tap'
import { Registry, type OpenMetricsContentType } from 'prom-client'
import { createMetrics } from '../../lib/metrics.js'
import { parseMetrics, valueOf } from '../prometheus.js'

// prom-client looks monitorEventLoopDelay up on Node's module at each collectDefaultMetrics call.
const perfHooks = createRequire(import.meta.url)('node:perf_hooks') as typeof import('node:perf_hooks')

test('twenty gateways, one after another: one event-loop monitor, and each registry holds the default metrics while its gateway runs', async (t) => {
  const original = perfHooks.monitorEventLoopDelay
  let monitors = 0
  perfHooks.monitorEventLoopDelay = (...args) => { monitors++; return original(...args) }
  t.teardown(() => { perfHooks.monitorEventLoopDelay = original })

  const running = createMetrics()
  for (let i = 0; i < 20; i++) {
    const registry = new Registry()
    const metrics = createMetrics({ registry })
    t.ok(registry.getSingleMetric('nodejs_eventloop_lag_p99_seconds'), `gateway ${i}: the event-loop lag in its registry`)
    metrics.close()
    t.notOk(registry.getSingleMetric('nodejs_eventloop_lag_p99_seconds'), `gateway ${i}: taken out at close`)
  }
  t.equal(monitors, 1, 'one monitor for the process, not one per gateway')

  const scraped = parseMetrics(await running.registry.metrics())
  t.ok(valueOf(scraped, 'process_cpu_user_seconds_total') > 0, 'a gateway still running reads the process\'s CPU after the others closed')
  t.ok(scraped.some((s) => s.name === 'nodejs_eventloop_lag_p99_seconds'), 'and its event-loop lag')
  running.close()
})

test('each registry has views of its own: an OpenMetrics registry\'s scrape renames nothing in the others, a reset resets nothing shared', async (t) => {
  const prometheus = createMetrics()
  const om = new Registry<OpenMetricsContentType>()
  om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  const openMetrics = createMetrics({ registry: om as unknown as Registry })
  t.teardown(() => { prometheus.close(); openMetrics.close() })
  const cpu = async (registry: Registry): Promise<string[]> => (await registry.metrics()).split('\n').filter((l) => l.startsWith('process_cpu_seconds'))
  t.match(await cpu(openMetrics.registry), ['process_cpu_seconds_total '], 'OpenMetrics: the counter as OpenMetrics names it')
  t.match(await cpu(prometheus.registry), ['process_cpu_seconds_total '], 'Prometheus, after that scrape: still _total')
  const later = createMetrics({ registry: new Registry() })
  t.ok(later.registry.getSingleMetric('process_cpu_seconds_total'), 'and a registry made later holds it under its name')
  t.same((later.registry.getSingleMetric('nodejs_gc_duration_seconds') as unknown as { labelNames: string[] }).labelNames, ['kind'], 'a view says what it is labelled by')
  later.close()

  const value = async (): Promise<number> => Number(/^process_cpu_user_seconds_total (\S+)$/m.exec(await openMetrics.registry.metrics())?.[1])
  const before = await value()
  prometheus.registry.resetMetrics()
  const after = await value()
  t.ok(before > 0 && after >= before, `a reset of one registry leaves the process's CPU in the others (${before} s, then ${after} s)`)
})

test('a registry that holds Node\'s default metrics already is refused, as before', async (t) => {
  const registry = new Registry()
  createMetrics({ registry })
  t.throws(() => createMetrics({ registry }), { code: 'CONFIG_INVALID' })
})
