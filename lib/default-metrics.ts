// Node's default metrics (prom-client's collectDefaultMetrics), made once per process and shown in
// each registry that asks for them. Each collectDefaultMetrics call starts an event-loop delay monitor
// and a GC observer that prom-client gives no way to stop, so a call per app left one of each running
// for the process's life after every app closed: a host's test suite that builds an app per test, or
// a host that builds apps in a loop, paid for all of them (200 apps: 0.4 % of a core, measured). They
// describe the process, not an app, so one set serves every registry; an app's close takes them out of
// its registry and leaves them running for the next.
//
// Each registry gets views of its own (viewOf), never the shared metric itself: an OpenMetrics
// registry renames the counters it is given at each scrape (`_total` taken off), which would rename
// them for every registry of the process.
import { Registry, collectDefaultMetrics, type Metric } from 'prom-client'

/** What a registry reads of a metric (registry.js: metrics(), getMetricsAsJSON(), resetMetrics()). */
interface Readable {
  name: string
  help: string
  type: string
  aggregator: string
  /** Not read by a registry; by a host, or a test, that asks a metric what it is labelled by. */
  labelNames: readonly string[]
  get: () => Promise<{ name: string }>
  getForPromString?: () => Promise<{ name: string }>
}

let shared: Readable[] | undefined

/** The process's one set, made at the first call. */
function defaults (): Readable[] {
  if (shared !== undefined) return shared
  const own = new Registry()
  collectDefaultMetrics({ register: own })
  // getMetricsAsArray is typed as plain records; what it holds are the metrics themselves.
  shared = own.getMetricsAsArray() as unknown as Readable[]
  return shared
}

/**
 * `metric` as one registry shows it: its name the view's own (a registry may rename it), its values
 * the metric's. A registry's resetMetrics() leaves the process's metrics as they are: other
 * registries read them too.
 */
function viewOf (metric: Readable): Metric {
  const view: Readable & { reset: () => void } = {
    name: metric.name,
    help: metric.help,
    type: metric.type,
    aggregator: metric.aggregator,
    labelNames: metric.labelNames,
    get: async () => ({ ...await metric.get(), name: view.name }),
    reset: () => {}
  }
  const forProm = metric.getForPromString?.bind(metric)
  if (forProm !== undefined) view.getForPromString = async () => ({ ...await forProm(), name: view.name })
  return view as unknown as Metric
}

/** Registers views of the process's one set of Node's default metrics in `registry`; throws as prom-client does for a name it already holds. */
export function registerDefaultMetrics (registry: Registry): void {
  for (const metric of defaults()) registry.registerMetric(viewOf(metric))
}
