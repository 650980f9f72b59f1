// One log line per request, written once it is answered, where Fastify writes two ('incoming
// request', then 'request completed'): this one carries the request (method, URL, host, peer), its
// status and its time. Each line is a JSON serialisation and a write(2) on the event loop: at
// LOG_LEVEL=info the second line cost an authenticated request some 20 µs of the gateway's CPU on a
// slow machine (BENCHMARKS.md, "Logging at info"). At debug the incoming line is written too, so
// that a request that never completes is seen. A probe answered 2xx (a route whose config says
// `probe`: the health routes, the metrics scrape) is logged at debug: an orchestrator's probe every
// few seconds is not traffic; one that fails stays at info. A 4xx that reaches Fastify's default error handler is
// logged without its stack.
import Fastify, { type FastifyReply, type FastifyRequest, type LogController } from 'fastify'

/** The route config of a probe (routes/health.ts) or a scrape (routes/metrics.ts). */
export const PROBE_CONFIG = { probe: true }

// LogController came with Fastify 5.10 (fastify/fastify#6580); the peer range starts at 5.0: with an
// earlier one, Fastify's own two lines.
const Base = (Fastify as unknown as { LogController?: new () => LogController }).LogController

const isProbe = (request: FastifyRequest): boolean => (request.routeOptions.config as { probe?: boolean }).probe === true
// Levels that write no request line: at these (the bench runs at warn) a request's completion costs
// one property read, not the route's options (a getter that builds an object) and the line's object.
const QUIET = new Set(['fatal', 'error', 'warn', 'silent'])

/** The request log: one line per request once answered (above), a 4xx without its stack. */
function oneLinePerRequest (Controller: new () => LogController): LogController {
  class OneLinePerRequest extends Controller {
    override incomingRequest (request: FastifyRequest): void {
      request.log.debug({ req: request }, 'incoming request')
    }

    // Fastify's default error handler (a listener's root, where the gateway's is not set: a 404)
    // logs a 4xx with its error's stack: the code and message say it all.
    override defaultErrorLog (error: Error, request: FastifyRequest, reply: FastifyReply): void {
      if (reply.statusCode >= 500) reply.log.error({ req: request, res: reply, err: error }, error?.message)
      else reply.log.info({ res: reply, code: (error as { code?: unknown } | undefined)?.code }, error?.message)
    }

    override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
      if (error !== null && error !== undefined) {
        reply.log.error({ req: request, res: reply, responseTime: reply.elapsedTime, err: error }, 'request errored')
        return
      }
      if (QUIET.has(reply.log.level)) return
      const line = { req: request, res: reply, responseTime: reply.elapsedTime }
      if (reply.statusCode < 300 && isProbe(request)) reply.log.debug(line, 'request completed')
      else reply.log.info(line, 'request completed')
    }
  }
  return new OneLinePerRequest()
}

/**
 * Fastify's logController option for the gateway's listeners, made once and shared (it holds no state:
 * Fastify uses it as given); undefined when this Fastify has none. Given one, Fastify ignores its
 * top-level `disableRequestLogging` and `requestIdLogLabel`: a host that spreads serverOptions() and
 * sets those leaves this out (docs/embedding.md).
 */
export const REQUEST_LOG: LogController | undefined = Base === undefined ? undefined : oneLinePerRequest(Base)
