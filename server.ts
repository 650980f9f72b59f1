#!/usr/bin/env node
// The standalone gateway: reads the environment, builds Fastify, listens, and closes gracefully; with
// WORKERS > 1 this process is the primary of that many such workers (workers.ts).
// With ADMIN_PORT, the admin API listens too, on a Fastify instance of its own (ADMIN_HOST, loopback
// by default): its routes are never reachable through the gateway's port.
// With METRICS_PORT, GET /metrics answers on a listener of its own (METRICS_HOST, loopback by default):
// this process's metrics, or with WORKERS > 1 the primary's sum of its workers' (workers.ts).
import cluster from 'node:cluster'
import Fastify, { type FastifyInstance } from 'fastify'
import { AggregatorRegistry, register as processRegistry } from 'prom-client'
import wechatAuth from './app.js'
import { loadConfig, resolveConfig, type ResolvedConfig } from './lib/config.js'
import type { Config } from './lib/schemas.js'
import { countErrors } from './http/count-errors.js'
import { errorHandler, notFoundHandler } from './http/error-handler.js'
import { registerLoadShedding } from './http/load-shedding.js'
import { adminServerOptions } from './http/admin-server-options.js'
import { closeAfterAnswers, endLingers } from './http/open-connections.js'
import { serverOptions } from './http/server-options.js'
import adminRoutes from './routes/admin.js'
import metricsRoutes, { type MetricsRouteOptions } from './routes/metrics.js'
import { stopGracefully } from './stopping.js'
import { READY_MESSAGE, WORKER_SLOT_ENV, runPrimary, workerCount, workerMetrics } from './workers.js'

// How long a closing gateway lets its requests finish.
const DRAIN_MS = 10_000
// How often, while closing, connections idle since their last answer are closed (Fastify closes the
// idle ones once, when the close starts; Node's close waits for every connection to end).
const IDLE_SWEEP_MS = 50

/** An error's message and its causes' (the store's boot error has Redis' reason, NOAUTH say, as its cause). */
const withCauses = (err: unknown): string => {
  const { message, cause } = err as Error
  return cause instanceof Error && !message.includes(cause.message) ? `${message}: ${withCauses(cause)}` : message
}

/** A configuration error: one line on stderr, before anything starts, and exit 1. */
function refuse (err: unknown): never {
  process.stderr.write(`fastify-wechat-auth: ${(err as Error).message}\n`)
  process.exit(1)
}

let config: Config
try {
  config = loadConfig(process.env)
  // The plugin resolves it again; checked here first, every configuration error (the production and
  // admin rules included) is one line on stderr before anything starts.
  resolveConfig(config, { hasRedisClient: false, processInProduction: process.env.NODE_ENV === 'production', standalone: true })
} catch (err) {
  refuse(err)
}

const workers = workerCount(config.WORKERS)
if (cluster.isPrimary && workers > 1) {
  runPrimary(workers, DRAIN_MS, config.METRICS_PORT === undefined ? undefined : async () => await listenMetrics(config, null), config.LOG_LEVEL)
} else {
  await serve(config)
}

async function serve (config: Config): Promise<void> {
  let server: FastifyInstance
  try {
    server = Fastify(serverOptions(config))
  } catch (err) {
    refuse(err) // an option Fastify or Node refuses that the checks above let through
  }
  server.setNotFoundHandler(notFoundHandler)
  // Outside the gateway's contexts only the 404 route is the root's: its errors (a body it cannot
  // parse) answered as the gateway's, with a code.
  server.setErrorHandler(errorHandler)
  let admin: FastifyInstance | null = null
  let metrics: FastifyInstance | null = null
  const withMetrics = config.METRICS_PORT !== undefined
  if (withMetrics && cluster.isWorker) answerPrimaryForMetrics()
  stopGracefully({ delayMs: DRAIN_MS, logger: server.log }, async ({ err, reason }) => {
    // One line for a stop: why, and how long requests in flight may take.
    if (err !== undefined) server.log.error({ err }, 'closing after an error')
    else server.log.info({ signal: reason, drainMs: DRAIN_MS }, 'shutting down: draining requests in flight')
    // No connection lingers past the stop's start, on any listener (the gateway's closes last).
    for (const instance of [admin, metrics, server]) if (instance !== null) endLingers(instance.server)
    // The admin API first: its requests use the gateway's store, which closes with the gateway.
    for (const instance of [admin, metrics, server]) if (instance !== null) await closeDraining(instance)
  })

  try {
    await registerLoadShedding(server, { maxEventLoopDelayMs: config.MAX_EVENT_LOOP_DELAY_MS, livePath: '/health/live' })
    await server.register(wechatAuth, { config, env: false, ...(withMetrics ? { metrics: { registry: processRegistry } } : {}) })
    await server.listen({ port: config.PORT, host: config.HOST })
    const resolved = server.wechatAuthConfig
    // resolveConfig refuses one without the other.
    if (resolved.ADMIN_PORT !== undefined && resolved.ADMIN_TOKEN !== undefined) admin = await listenAdmin(server, resolved, resolved.ADMIN_PORT, resolved.ADMIN_TOKEN)
    if (withMetrics && cluster.isPrimary) metrics = await listenMetrics(resolved, server)
    // A worker is ready once every listener of its is: until one is, the primary takes a death for a failed start.
    if (cluster.isWorker) process.send?.(READY_MESSAGE)
  } catch (err) {
    server.log.fatal({ err }, 'the gateway cannot start')
    // A silent log says nothing: a start that fails still says why, as a configuration error does.
    if (config.LOG_LEVEL === 'silent') process.stderr.write(`fastify-wechat-auth: the gateway cannot start: ${withCauses(err)}\n`)
    await admin?.close().catch(() => {})
    await metrics?.close().catch(() => {})
    await server.close().catch(() => {})
    process.exit(1)
  }
}

/**
 * Closes `instance`: its requests in flight answered, and a connection kept alive after its last
 * answer (a proxy's pool) closed then, not at the drain's deadline. Only once it is closing: until
 * then its connections may still carry requests.
 */
async function closeDraining (instance: FastifyInstance): Promise<void> {
  closeAfterAnswers(instance.server)
  const closing = instance.close()
  const idle = setInterval(() => { instance.server.closeIdleConnections() }, IDLE_SWEEP_MS)
  try {
    await closing
  } finally {
    clearInterval(idle)
  }
}

/** The admin API on its own listener, logging through the gateway's logger, its errors in the gateway's metrics. */
async function listenAdmin (gateway: FastifyInstance, resolved: ResolvedConfig, port: number, token: string): Promise<FastifyInstance> {
  const instance = Fastify(adminServerOptions(resolved, gateway.log, token))
  if (gateway.hasDecorator('wechatAuthMetrics')) countErrors(instance, gateway.wechatAuthMetrics)
  instance.setNotFoundHandler(notFoundHandler)
  instance.setErrorHandler(errorHandler)
  await instance.register(adminRoutes, { sessions: gateway.wechatAuthSessions, token })
  const address = await instance.listen({ port, host: resolved.ADMIN_HOST, listenTextResolver: (at) => `admin API listening at ${at}/admin` })
  if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(resolved.ADMIN_HOST)) {
    instance.log.warn({ address }, 'the admin API listens beyond loopback (ADMIN_HOST): make sure only operators can reach it')
  }
  return instance
}

/**
 * A worker's metrics are in the process's registry, labelled with its slot (kept by its replacement,
 * so that a restart does not look like every counter going back to zero); prom-client answers the
 * primary once an AggregatorRegistry exists.
 */
function answerPrimaryForMetrics (): AggregatorRegistry<typeof processRegistry.contentType> {
  processRegistry.setDefaultLabels({ worker: process.env[WORKER_SLOT_ENV] ?? String(cluster.worker?.id ?? 0) })
  AggregatorRegistry.setRegistries(processRegistry)
  return new AggregatorRegistry()
}

// How long the primary waits for its workers' metrics in a scrape.
const WORKER_METRICS_TIMEOUT_MS = 1000

/** The workers' metrics, summed by series, and how many workers answered; 503 when none did. */
async function workersScrape (): Promise<string> {
  const { metrics, answered, missing } = await workerMetrics(WORKER_METRICS_TIMEOUT_MS)
  if (answered === 0) throw new Error(`no worker answered within ${WORKER_METRICS_TIMEOUT_MS} ms`)
  const text = await AggregatorRegistry.aggregate(metrics as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics()
  return `${text}# HELP wechat_auth_metrics_workers Workers whose metrics this scrape holds (answered) or lacks (missing: starting or dying).
# TYPE wechat_auth_metrics_workers gauge
wechat_auth_metrics_workers{state="answered"} ${answered}
wechat_auth_metrics_workers{state="missing"} ${missing}
`
}

/**
 * GET /metrics on METRICS_PORT: this process's registry, its errors counted there with the gateway's,
 * or, in the primary of several workers (no `gateway`), the sum of what each worker answers
 * (prom-client's AggregatorRegistry, over IPC; the primary's own errors are in its log only).
 */
async function listenMetrics (config: Config, gateway: FastifyInstance | null): Promise<FastifyInstance> {
  const { logger: ownLogger, ...options } = serverOptions(config)
  const instance = gateway === null
    ? Fastify({ ...options, logger: ownLogger })
    : Fastify({ ...options, loggerInstance: gateway.log.child({ listener: 'metrics' }) })
  if (gateway?.hasDecorator('wechatAuthMetrics') === true) countErrors(instance, gateway.wechatAuthMetrics)
  instance.setNotFoundHandler(notFoundHandler)
  instance.setErrorHandler(errorHandler)
  let source: MetricsRouteOptions['source'] = processRegistry
  if (gateway === null) source = { metrics: workersScrape, contentType: processRegistry.contentType }
  await instance.register(metricsRoutes, { source })
  await instance.listen({ port: config.METRICS_PORT ?? 0, host: config.METRICS_HOST, listenTextResolver: (at) => `metrics listening at ${at}/metrics` })
  return instance
}
