// Node's default metrics (prom-client's collectDefaultMetrics), made once per process and registered in
// each registry that asks for them. Each collectDefaultMetrics call starts an event-loop delay monitor
// and a GC observer that prom-client gives no way to stop, so a call per app left one of each running
// for the process's life after every app closed: a host's test suite that builds an app per test, or
// a host that builds apps in a loop, paid for all of them (200 apps: 0.4 % of a core, measured). They
// describe the process, not an app, so one set serves every registry; an app's close takes them out of
// its registry and leaves them running for the next.
import { Registry, collectDefaultMetrics, type Metric } from 'prom-client'

let shared: Metric[] | undefined

/** The process's one set, made at the first call. */
function defaults (): Metric[] {
  if (shared !== undefined) return shared
  const own = new Registry()
  collectDefaultMetrics({ register: own })
  // getMetricsAsArray is typed as plain records; what it holds are the metrics themselves.
  shared = own.getMetricsAsArray() as unknown as Metric[]
  return shared
}

/** Registers the process's one set of Node's default metrics in `registry`; throws as prom-client does for a name it already holds. */
export function registerDefaultMetrics (registry: Registry): void {
  for (const metric of defaults()) registry.registerMetric(metric)
}
