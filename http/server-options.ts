// Fastify's options for the standalone gateway. The tests build their instances from the same
// function, so they run with what production runs.
import { randomUUID } from 'node:crypto'
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import { UpgradeRefusedError } from '../lib/errors.js'
import { BEFORE_FASTIFY, MAX_PARAM_LENGTH, type CodedAnswer as Coded } from '../lib/refusals.js'
import { ConfigSchema, type Config } from '../lib/schemas.js'
import { closeAfterAnswer, noteRequest, unanswerable } from './lingering-close.js'
import { trackConnections } from './open-connections.js'
import { holdsJwtOrRefreshToken, loggedUrl } from './logged-url.js'
import { REQUEST_LOG } from './request-log.js'

/**
 * The event the standalone server emits, with the answer's code, for each request it answers before
 * Fastify sees one (a missing Host, an Upgrade, an Expect, a malformed or too slow request): the
 * metrics plugin counts them in wechat_auth_errors_total like the others.
 */
export const REFUSED_BEFORE_FASTIFY = 'fastify-wechat-auth:refused'
/** The server that emits it. */
interface RefusalEmitter { emit: (event: typeof REFUSED_BEFORE_FASTIFY, code: string) => unknown }

/** Log paths that may hold credentials; pino replaces them before a line is written. */
export const REDACT_PATHS = ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]']

/** Fastify's request serializer (lib/logger-pino.js), its URL through loggedUrl (http/logged-url.ts). */
export const requestSerializer = (request: FastifyRequest): Record<string, unknown> => ({
  method: request.method,
  url: loggedUrl(request.url),
  version: request.headers['accept-version'],
  host: request.host,
  remoteAddress: request.ip,
  remotePort: request.socket?.remotePort
})

export function parseTrustProxy (value: string): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (value === 'true') return true
  if (value === 'false' || value === '') return false
  if (/^\d+$/.test(value)) {
    const hops = Number(value) // trust the nearest `hops` proxies
    return (_address, hop) => hop < hops
  }
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '')
}

export interface ServerOptionsExtra {
  /** Where log lines go (tests capture them); stdout by default. */
  logStream?: { write: (line: string) => void }
}

type Timeouts = Pick<Config, 'HTTP_HEADERS_TIMEOUT_MS' | 'HTTP_REQUEST_TIMEOUT_MS' | 'HTTP_KEEP_ALIVE_TIMEOUT_MS'>
const defaultOf = (key: keyof Timeouts | 'STORE_TIMEOUT_MS'): number => ConfigSchema.properties[key].default

// Node checks the header and request deadlines every connectionsCheckingInterval (30 s by default,
// so a 30 s deadline fired after 30 to 60 s): checked every second, they fire within a second.
const CHECK_INTERVAL_MS = 1000

/**
 * Ajv's options for the gateway's validation: unknown body properties (additionalProperties: false)
 * and wrong types are refused instead of silently dropped or converted (Fastify's defaults): a client
 * bug should be a 400 it can see. The admin API sets them in its own context whatever the host's.
 */
export const STRICT_AJV = { removeAdditional: false, coerceTypes: false } as const

// A request id a client or proxy sent is kept when it looks like one: short, without spaces or control
// characters (it is written into every log line of the request, and answered back).
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/
// Kept on the request itself, not in a WeakMap: a WeakMap entry per request (an ephemeron the collector
// must trace) cost the trivial route 4-5 % of its throughput (BENCHMARKS.md, the ceiling).
const REQUEST_ID = Symbol('requestId')
type WithId = IncomingMessage & { [REQUEST_ID]?: string }

/** The request's id: the one it came with, if sane, or a new one; the server remembers it for genReqId. */
function requestIdOf (request: WithId, header: string): string {
  const known = request[REQUEST_ID]
  if (known !== undefined) return known
  const sent = request.headers[header]
  // Not a token a client put there: the id is in every log line and audit event. A trace id of 40 or
  // more characters (traceparent, X-Amzn-Trace-Id) is kept, so a ticket's shape cannot be told from one.
  const id = typeof sent === 'string' && SANE_REQUEST_ID.test(sent) && !holdsJwtOrRefreshToken(sent) ? sent : randomUUID()
  request[REQUEST_ID] = id
  return id
}

// How long the gateway's plugins may take to load: the store's boot may wait 3 × STORE_TIMEOUT_MS for
// its connection, as long for the tracked one, and once more for its first write. Fastify's default
// (10 s) cut that short with a message that names no setting ("Plugin did not start in time").
const pluginTimeoutFor = (storeTimeoutMs: number): number => Math.max(10_000, 8 * storeTimeoutMs)

export function serverOptions (config: Pick<Config, 'LOG_LEVEL' | 'TRUST_PROXY'> & Partial<Timeouts & Pick<Config, 'REQUEST_ID_HEADER' | 'STORE_TIMEOUT_MS'>>, extra: ServerOptionsExtra = {}): FastifyServerOptions {
  const idHeader = (config.REQUEST_ID_HEADER ?? ConfigSchema.properties.REQUEST_ID_HEADER.default).toLowerCase()
  const headersTimeout = config.HTTP_HEADERS_TIMEOUT_MS ?? defaultOf('HTTP_HEADERS_TIMEOUT_MS')
  const requestTimeout = config.HTTP_REQUEST_TIMEOUT_MS ?? defaultOf('HTTP_REQUEST_TIMEOUT_MS')
  // Longer than the idle timeout of the load balancers in front (60 s for most), so that they, not
  // the gateway, close an idle connection: no request is sent on a connection being closed.
  const keepAliveTimeout = config.HTTP_KEEP_ALIVE_TIMEOUT_MS ?? defaultOf('HTTP_KEEP_ALIVE_TIMEOUT_MS')
  return {
    ...(REQUEST_LOG !== undefined ? { logController: REQUEST_LOG } : {}),
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { req: requestSerializer },
      ...(extra.logStream !== undefined ? { stream: extra.logStream } : {})
    },
    trustProxy: parseTrustProxy(config.TRUST_PROXY),
    ajv: { customOptions: { ...STRICT_AJV } },
    return503OnClosing: true,
    // The id each log line of a request carries (reqId), answered in the same header.
    requestIdHeader: false,
    genReqId: (request) => requestIdOf(request as IncomingMessage, idHeader),
    requestTimeout,
    keepAliveTimeout,
    pluginTimeout: pluginTimeoutFor(config.STORE_TIMEOUT_MS ?? defaultOf('STORE_TIMEOUT_MS')),
    // In routerOptions: Fastify 5.12 deprecates the top-level option (FSTDEP022); one before
    // routerOptions drops the key it does not know (its options are validated with removeAdditional).
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors,
    serverFactory: (handler) => {
      // Node's own check of the Host header answers a bare 400 without a body: done here, with a code.
      const server = createServer({ headersTimeout, requestTimeout, keepAliveTimeout, connectionsCheckingInterval: CHECK_INTERVAL_MS, requireHostHeader: false }, (request, response) => {
        // Behind an answer that closes the connection: neither run nor answered (http/lingering-close.ts).
        if (unanswerable(request, response)) return
        response.setHeader(idHeader, requestIdOf(request, idHeader))
        // A request that asks to switch protocols has no body Node will parse: anything that read
        // one would wait until a timeout. This server speaks plain HTTP only.
        const upgrade = asksToUpgrade(request.headers)
        noteRequest(request, response, !upgrade)
        const refusal = upgrade
          ? new UpgradeRefusedError()
          : request.headers.host === undefined && request.httpVersion === '1.1' ? NO_HOST : null
        if (refusal === null) handler(request, response)
        else sendCoded(server, response, refusal)
      })
      server.keepAliveTimeout = keepAliveTimeout
      trackConnections(server)
      // Node answers an Expect other than 100-continue with a bare 417; this one has a code.
      server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
        if (unanswerable(request, response)) return
        noteRequest(request, response, true)
        sendCoded(server, response, EXPECTATION_FAILED)
      })
      // Without a listener Node closes a CONNECT's socket without a word.
      server.on('connect', (_request: IncomingMessage, socket: Socket) => { refuseOnSocket(server, socket, BEFORE_FASTIFY.connect) })
      return server
    },
    clientErrorHandler
  }
}

/**
 * Whether a request asks to switch protocols (Connection: Upgrade with an Upgrade header). Node's
 * parser then stops reading the body (what follows the headers belongs to the new protocol), yet
 * without an 'upgrade' listener it still hands the request on as a plain one: anything that reads
 * its body waits until the request timeout. Such requests are refused before that.
 */
export const asksToUpgrade = (headers: { connection?: string | undefined, upgrade?: string | undefined }): boolean =>
  headers.upgrade !== undefined && /(?:^|,)\s*upgrade\s*(?:,|$)/i.test(headers.connection ?? '')

// Node's parser and timeout errors (by their code), as answered.
const CLIENT_ERRORS: Record<string, Coded> = {
  ERR_HTTP_REQUEST_TIMEOUT: BEFORE_FASTIFY.requestTimeout,
  HPE_HEADER_OVERFLOW: BEFORE_FASTIFY.headersTooLarge
}
const { badRequest: BAD_REQUEST, noHost: NO_HOST, expectationFailed: EXPECTATION_FAILED } = BEFORE_FASTIFY

const body = ({ statusCode, code, message }: Coded): string =>
  JSON.stringify({ statusCode, code, error: STATUS_CODES[statusCode], message })

/**
 * Answers `coded` on a socket no response object writes to (a parser error, a CONNECT), as a whole
 * HTTP/1.1 answer if it can still be written, and closes it; the server tells the metrics.
 */
function refuseOnSocket (server: RefusalEmitter, socket: Socket, coded: Coded): void {
  if (socket.writable) {
    const text = body(coded)
    socket.write(`HTTP/1.1 ${coded.statusCode} ${STATUS_CODES[coded.statusCode] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`)
    server.emit(REFUSED_BEFORE_FASTIFY, coded.code)
  }
  socket.destroy()
}

/**
 * What Fastify's router meets before any route: a path segment over MAX_PARAM_LENGTH, a URL that does
 * not decode. Fastify's own answers echo the path and have no charset; these are coded like the rest.
 */
function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const coded = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? BEFORE_FASTIFY.uriTooLong : error.code === 'FST_ERR_BAD_URL' ? BEFORE_FASTIFY.badUrl : null
  if (coded === null) {
    reply.send(error)
    return
  }
  request.log.info({ code: coded.code, statusCode: coded.statusCode }, 'request rejected')
  reply.code(coded.statusCode).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').send(body(coded))
  request.server.server.emit(REFUSED_BEFORE_FASTIFY, coded.code)
}

/** Answers `coded` and closes; the server tells the metrics (REFUSED_BEFORE_FASTIFY). */
function sendCoded (server: RefusalEmitter, response: ServerResponse, coded: Coded): void {
  response.writeHead(coded.statusCode, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', connection: 'close' }).end(body(coded))
  server.emit(REFUSED_BEFORE_FASTIFY, coded.code)
}

/**
 * Errors Node meets before a request exists (a malformed request line, headers too large, a
 * request too slow): answered with a code like every other error, then the connection is closed.
 * A client going away is nobody's fault: nothing to answer, nothing above debug in the log.
 */
function clientErrorHandler (this: { log: FastifyBaseLogger, server: RefusalEmitter }, err: Error & { code?: string }, socket: Socket): void {
  // A client that only closed its side in the middle of a request (HPE_INVALID_EOF_STATE) still reads:
  // it is answered, and counted, like every other request cut short.
  if (err.code === 'ECONNRESET' || socket.destroyed) {
    socket.destroy()
    return
  }
  // An answer given or owed (Node's deadline still counts for a body discarded after a 401): no raw
  // answer in its place.
  if (closeAfterAnswer(socket)) return
  const coded = CLIENT_ERRORS[err.code ?? ''] ?? BAD_REQUEST
  this.log.debug({ code: coded.code, parserCode: err.code }, 'client error')
  refuseOnSocket(this.server, socket, coded)
}
