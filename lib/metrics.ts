// The gateway's Prometheus metrics (prom-client): what each one counts, and how events become
// samples. No HTTP here: plugins/metrics.ts wires the sources (request hooks, audit events, the
// diagnostics channels, the store) and routes/metrics.ts answers GET /metrics.
//
// Every label has a bounded set of values: a route's template (never a raw path), a status code, a
// method, an error code of ours, a device type or appid from the configuration, a WeChat endpoint,
// a store operation. A value outside the expected shape, or past MAX_VALUES distinct ones in a label
// of a metric (the gateway's and Fastify's codes aside: always themselves), is counted as 'other'. No user id, session id, openid, token or code is ever a label.
import { Counter, Histogram, Registry } from 'prom-client'
import { registerDefaultMetrics } from './default-metrics.js'
import { defineAccessCacheMetrics } from './access-cache-metrics.js'
import type { AuditEvent } from './audit.js'
import { outcomeOf } from './audit.js'
import type { TokenRenewalMessage, WechatCallMessage } from './diagnostics.js'
import { ConfigError } from './errors.js'
import { MAX_VALUES, ROUTE_TEMPLATE, boundedLabel } from './metric-labels.js'

export interface MetricsOptions {
  /** Where the metrics are registered: a new registry by default (prom-client's global one is `register`). */
  registry?: Registry
  /** Node's default metrics (CPU, memory, GC, event-loop lag) in the same registry; true by default. */
  defaultMetrics?: boolean
  /** Requests by route and status code, for every route of the Fastify instance; true by default. */
  http?: boolean
}

const SECONDS_FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const SECONDS_WECHAT = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** How many sessions an audit event's reason says ended ('ended 3', 'all devices, ended 2'), or 1. */
export function endedCount (reason: string | undefined): number {
  const m = /ended (\d+)/.exec(reason ?? '')
  return m === null ? 1 : Number(m[1])
}

/** The refresh outcomes the dashboards chart: rotated, grace_retry, reuse_detected, invalid, or a code. */
function refreshOutcome (event: AuditEvent): string {
  if (event.event === 'refresh.reuse') return 'reuse_detected'
  if (event.outcome === 'ok') return event.reason === 'grace' ? 'grace_retry' : 'rotated'
  if (event.outcome === 'AUTH_REFRESH_INVALID') return 'invalid'
  return event.outcome
}

type SessionMetrics = Omit<ReturnType<typeof defineMetrics>, 'httpDuration' | 'errors' | 'rateLimited' | 'wechatCalls' | 'renewals' | 'storeDuration' | 'accessCache'>

/** Counts each audit event in the metric it belongs to. */
function auditCounter ({ logins, sessionsOpened, refreshes, revocations, stepUps, moderation }: SessionMetrics, deviceType: (v: string) => string) {
  // One bounded set per metric's label.
  const outcomeOf = { login: boundedLabel(), open: boundedLabel(), refresh: boundedLabel(), stepUp: boundedLabel() }
  return (event: AuditEvent): void => {
    switch (event.event) {
      case 'login':
        // Refused before a session: a mini-program login, or an H5 one (reason 'h5').
        logins.inc({ via: event.reason === 'h5' ? 'h5' : 'mp', outcome: outcomeOf.login(event.outcome) })
        break
      case 'session.open':
        // A login that reached the store: opened, or refused by the device rules or a ban.
        if (event.via === 'login' || event.via === 'h5') logins.inc({ via: event.via === 'h5' ? 'h5' : 'mp', outcome: outcomeOf.login(event.outcome) })
        sessionsOpened.inc({ via: event.via ?? 'login', device_type: deviceType(event.deviceType ?? 'unknown'), outcome: outcomeOf.open(event.outcome) })
        if (event.outcome === 'ok' && event.reason !== undefined) revocations.inc({ reason: 'displaced' }, endedCount(event.reason))
        break
      case 'refresh':
      case 'refresh.reuse':
        refreshes.inc({ outcome: outcomeOf.refresh(refreshOutcome(event)) })
        if (event.event === 'refresh.reuse') revocations.inc({ reason: 'reuse' })
        break
      case 'logout':
        revocations.inc({ reason: 'logout' }, endedCount(event.reason))
        break
      case 'step-up':
        stepUps.inc({ outcome: outcomeOf.stepUp(event.outcome) })
        break
      // Operator actions done. One that failed is audited with its code, not counted here (an admin API
      // call's answer is in wechat_auth_errors_total).
      case 'kick':
      case 'ban':
      case 'unban':
      case 'access.set':
        if (event.outcome !== 'ok') break
        moderation.inc({ action: event.event })
        if (event.event === 'kick') revocations.inc({ reason: 'kick' }, endedCount(event.reason))
        else if (event.event === 'ban') revocations.inc({ reason: 'ban' })
        break
    }
  }
}

/** Every metric of the gateway, registered in `registry`; the request histogram only with `http`. */
function defineMetrics (registry: Registry, http: boolean) {
  const registers = [registry]

  const httpDuration = new Histogram({
    name: 'wechat_auth_http_request_duration_seconds',
    help: 'HTTP requests answered, by method, route template and status code (_count is the request count)',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: SECONDS_FAST,
    // Without per-route metrics (MetricsOptions.http false) it is in no registry: a host's may hold the name.
    registers: http ? registers : []
  })
  const errors = new Counter({ name: 'wechat_auth_errors_total', help: 'Requests answered with an error, by its code', labelNames: ['code'] as const, registers })
  const rateLimited = new Counter({ name: 'wechat_auth_rate_limited_total', help: 'Requests refused by a rate limit (429 RATE_LIMITED), by route template', labelNames: ['route'] as const, registers })
  const logins = new Counter({ name: 'wechat_auth_logins_total', help: 'Logins with a WeChat code, by kind (mp: the mini program, h5: WeChat H5) and outcome: ok or the code answered (WeChat errcodes mapped: WX_CODE_INVALID, WX_CODE_USED...)', labelNames: ['via', 'outcome'] as const, registers })
  const sessionsOpened = new Counter({ name: 'wechat_auth_sessions_opened_total', help: 'Sessions opened or refused, by how (login, ticket, qr, h5), device type and outcome', labelNames: ['via', 'device_type', 'outcome'] as const, registers })
  const refreshes = new Counter({ name: 'wechat_auth_refreshes_total', help: 'Refresh-token rotations, by outcome: rotated, grace_retry, reuse_detected, invalid, or the code answered', labelNames: ['outcome'] as const, registers })
  const revocations = new Counter({ name: 'wechat_auth_revocations_total', help: 'Sessions ended before their time, by reason: logout, kick, displaced (device rules, session limit), reuse (a refresh token used twice); ban counts bans', labelNames: ['reason'] as const, registers })
  const stepUps = new Counter({ name: 'wechat_auth_step_ups_total', help: 'Step-ups (a fresh wx.login() code), by outcome', labelNames: ['outcome'] as const, registers })
  const moderation = new Counter({ name: 'wechat_auth_moderation_actions_total', help: 'Operator and host actions on users: kick, ban, unban, access.set', labelNames: ['action'] as const, registers })
  const wechatCalls = new Histogram({
    name: 'wechat_auth_wechat_call_duration_seconds',
    help: 'Calls to WeChat\'s server API (retry included), by endpoint and outcome: ok or the code the call ended with',
    labelNames: ['endpoint', 'outcome'] as const,
    buckets: SECONDS_WECHAT,
    registers
  })
  const renewals = new Counter({ name: 'wechat_auth_access_token_renewals_total', help: 'access_token renewals that reached WeChat, by mini program and outcome', labelNames: ['appid', 'outcome'] as const, registers })
  const storeDuration = new Histogram({
    name: 'wechat_auth_store_operation_duration_seconds',
    help: 'Session-store operations, by operation and outcome: ok or the error code (STORE_UNAVAILABLE...)',
    labelNames: ['operation', 'outcome'] as const,
    buckets: SECONDS_FAST,
    registers
  })
  return { httpDuration, errors, rateLimited, logins, sessionsOpened, refreshes, revocations, stepUps, moderation, wechatCalls, renewals, storeDuration, accessCache: defineAccessCacheMetrics(registers) }
}

/**
 * `store` with each asynchronous operation timed in `histogram` by operation and outcome; `close`,
 * `kind` and what answers at once (watchQr hands back its unsubscribe function, not a promise) as
 * they are.
 */
function timedStore<S extends object> (store: S, histogram: Histogram<'operation' | 'outcome'>, outcomeLabel: (value: string) => string): S {
  const timed: Record<string, unknown> = { ...(store as Record<string, unknown>) }
  for (const [name, fn] of Object.entries(store)) {
    if (typeof fn !== 'function' || name === 'close') continue
    const ok = histogram.labels(name, 'ok')
    const failed = (start: number) => (err: unknown): never => {
      histogram.observe({ operation: name, outcome: outcomeLabel(outcomeOf(err)) }, (performance.now() - start) / 1000)
      throw err
    }
    timed[name] = (...args: unknown[]): unknown => {
      const start = performance.now()
      let result: unknown
      try {
        result = fn.apply(store, args)
      } catch (err) {
        return failed(start)(err)
      }
      if (typeof (result as { then?: unknown } | null)?.then !== 'function') return result
      return (result as Promise<unknown>).then((value) => {
        ok.observe((performance.now() - start) / 1000)
        return value
      }, failed(start))
    }
  }
  return timed as S
}

/**
 * Registers the gateway's metrics (and Node's default ones) in `registry`; a name it already holds is
 * a CONFIG_INVALID naming the option, and what was registered is taken back. Returns the names added.
 */
function register (registry: Registry, defaultMetrics: boolean, http: boolean): { defined: ReturnType<typeof defineMetrics>, added: string[] } {
  const before = new Set(registry.getMetricsAsArray().map((m) => m.name))
  const added = (): string[] => registry.getMetricsAsArray().map((m) => m.name).filter((name) => !before.has(name))
  try {
    if (defaultMetrics) registerDefaultMetrics(registry)
    return { defined: defineMetrics(registry, http), added: added() }
  } catch (err) {
    for (const name of added()) registry.removeSingleMetric(name)
    throw new ConfigError(`metrics.registry already holds a metric the gateway registers (${(err as Error).message}): pass defaultMetrics: false when it has Node's default metrics, or a registry of the gateway's own`)
  }
}

export function createMetrics (opts: MetricsOptions = {}) {
  const registry = opts.registry ?? new Registry()
  const { defined, added } = register(registry, opts.defaultMetrics !== false, opts.http !== false)
  const { httpDuration, errors: errorsTotal, rateLimited, wechatCalls, renewals, storeDuration, accessCache, ...sessionMetrics } = defined
  const label = {
    method: boundedLabel(),
    route: boundedLabel(MAX_VALUES, ROUTE_TEMPLATE),
    rateLimitedRoute: boundedLabel(MAX_VALUES, ROUTE_TEMPLATE),
    code: boundedLabel(),
    deviceType: boundedLabel(),
    endpoint: boundedLabel(),
    wechatOutcome: boundedLabel(),
    appid: boundedLabel(100), // WECHAT_APPS takes up to 100 mini programs
    renewalOutcome: boundedLabel(),
    storeOutcome: boundedLabel()
  }
  // The labelled children of the request histogram, by method, route and status: found, not built, per request.
  const httpChildren = new Map<string, ReturnType<typeof httpDuration.labels>>()

  return {
    registry,
    /** Takes the gateway's metrics out of the registry (a host's outlives the gateway). */
    close (): void {
      for (const name of added) registry.removeSingleMetric(name)
    },
    /** Whether every route's requests are counted (MetricsOptions.http). */
    http: opts.http !== false,

    /** One request answered: `route` is the route's template ('' when no route matched). */
    request (method: string, route: string, statusCode: number, seconds: number): void {
      const key = `${method} ${route} ${statusCode}`
      let child = httpChildren.get(key)
      if (child === undefined) {
        child = httpDuration.labels(label.method(method), route === '' ? 'unmatched' : label.route(route), String(statusCode))
        if (httpChildren.size < MAX_VALUES * 8) httpChildren.set(key, child)
      }
      child.observe(seconds)
    },

    /** One request answered with an error of code `code` on route template `route`. */
    error (code: string, route: string): void {
      errorsTotal.inc({ code: label.code(code) })
      if (code === 'RATE_LIMITED') rateLimited.inc({ route: route === '' ? 'unmatched' : label.rateLimitedRoute(route) })
    },

    /** What an audit event (lib/audit.ts) counts. */
    audit: auditCounter(sessionMetrics, label.deviceType),

    wechatCall (message: WechatCallMessage): void {
      wechatCalls.observe({ endpoint: label.endpoint(message.endpoint), outcome: label.wechatOutcome(message.outcome) }, message.seconds)
    },

    tokenRenewal (message: TokenRenewalMessage): void {
      renewals.inc({ appid: label.appid(message.appid), outcome: label.renewalOutcome(message.outcome) })
    },

    /** The store with each asynchronous operation timed (timedStore). */
    instrumentStore: <S extends object>(store: S): S => timedStore(store, storeDuration, label.storeOutcome),

    /** The access check's read copy, counted at each scrape (lib/access-cache-metrics.ts). */
    watchAccessCache: accessCache.watch
  }
}

export type GatewayMetrics = ReturnType<typeof createMetrics>
