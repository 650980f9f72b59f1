// The simulator's HTTP side: routes by method and path, caps bodies, sends answers the way WeChat
// does (JSON as text/plain), late when a handler asks, and records every call. Knows no endpoint.
// Any body over 64 KiB -> HTTP 413 errcode 45002. Unknown paths and methods -> HTTP 404. A handler
// that throws (say, a test's `now`) -> HTTP 500 errcode -1.
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface SimulatorCall {
  path: string
  /** The js_code or phone code WeChat received (after decoding); null for other endpoints. */
  code: string | null
  errcode: number
  /** The mini program the call acted for, when the simulator knows it. */
  appid?: string
}

/** What a handler decides; the server records it in `calls` and sends it. */
export interface Answer {
  errcode: number
  body: unknown
  status?: number
  code?: string | null
  appid?: string
  delayMs?: number
  /** For a body of bytes (an image) or a page: its content type. JSON is sent as text/plain, as WeChat does. */
  contentType?: string
  /** More response headers (a redirect's location). */
  headers?: OutgoingHttpHeaders
}

export type Handler = (query: URLSearchParams, body: Buffer) => Answer

/** Routes by `${method} ${path}`. */
export type Routes = ReadonlyMap<string, Handler>

export interface ListenOptions {
  host?: string
  port?: number
}

const MAX_BODY_BYTES = 64 * 1024

/** WeChat's way to refuse: an errcode, and an errmsg that ends with a request id. */
export function fail (errcode: number, errmsg: string, more: Partial<Answer> = {}): Answer {
  return { errcode, body: { errcode, errmsg: `${errmsg}, rid: ${randomBytes(6).toString('hex')}` }, ...more }
}

function send (res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  // WeChat answers JSON as text/plain; clients must parse regardless of the header.
  const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** Calls `done` once with the body, or with null as soon as it is known to exceed `limit`. */
function readBody (req: IncomingMessage, limit: number, done: (body: Buffer | null) => void): void {
  if (Number(req.headers['content-length']) > limit) {
    done(null)
    return
  }
  const chunks: Buffer[] = []
  let size = 0
  req.on('data', (chunk: Buffer) => {
    size += chunk.length
    if (size <= limit) chunks.push(chunk)
    else if (size - chunk.length <= limit) done(null)
  })
  req.on('end', () => { if (size <= limit) done(Buffer.concat(chunks)) })
}

function parseTarget (target: string | undefined): URL | null {
  try {
    return new URL(target ?? '/', 'http://simulator')
  } catch {
    return null
  }
}

/** What answering needs besides the request: the record of calls and the answers still held back. */
interface Ledger {
  calls: SimulatorCall[]
  pending: Set<NodeJS.Timeout>
}

function respond (ledger: Ledger, res: ServerResponse, path: string, answer: Answer): void {
  const { errcode, code = null, appid } = answer
  ledger.calls.push(appid === undefined ? { path, code, errcode } : { path, code, errcode, appid })
  const status = answer.status ?? 200
  const headers = { ...answer.headers, ...(answer.contentType === undefined ? {} : { 'content-type': answer.contentType }) }
  if (answer.delayMs === undefined) {
    send(res, status, answer.body, headers)
    return
  }
  const t = setTimeout(() => { ledger.pending.delete(t); send(res, status, answer.body, headers) }, answer.delayMs)
  ledger.pending.add(t)
}

function run (ledger: Ledger, res: ServerResponse, path: string, handler: Handler, q: URLSearchParams, body: Buffer): void {
  let answer: Answer
  try {
    answer = handler(q, body)
  } catch {
    // A bug or a throwing test clock must cost one answer, never the process.
    answer = fail(-1, 'system error', { status: 500 })
  }
  respond(ledger, res, path, answer)
}

function handle (routes: Routes, ledger: Ledger, req: IncomingMessage, res: ServerResponse): void {
  // A client that goes away mid-body emits an error nobody else listens to.
  req.on('error', () => {})
  const url = parseTarget(req.url)
  const handler = url === null ? undefined : routes.get(`${req.method ?? ''} ${url.pathname}`)
  if (url === null || handler === undefined) {
    send(res, 404, { errcode: 404, errmsg: 'not found' })
    return
  }
  if (req.method !== 'POST') {
    run(ledger, res, url.pathname, handler, url.searchParams, Buffer.alloc(0))
    return
  }
  readBody(req, MAX_BODY_BYTES, (body) => {
    if (body !== null) {
      run(ledger, res, url.pathname, handler, url.searchParams, body)
      return
    }
    ledger.calls.push({ path: url.pathname, code: null, errcode: 45002 })
    // Closing tells the client to stop sending the rest; Node discards what still arrives.
    send(res, 413, { errcode: 45002, errmsg: `content size out of limit (${MAX_BODY_BYTES} bytes)` }, { connection: 'close' })
  })
}

/** Serves `routes` on host:port (127.0.0.1 and any free port by default) until close(). */
export async function listen (routes: Routes, opts: ListenOptions): Promise<{ url: string, calls: SimulatorCall[], close: () => Promise<void> }> {
  const ledger: Ledger = { calls: [], pending: new Set() }
  const server: Server = createServer((req, res) => { handle(routes, ledger, req, res) })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve)
  })
  const addr = server.address() as AddressInfo
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  return {
    url: `http://${host}:${addr.port}`,
    calls: ledger.calls,
    async close () {
      for (const t of ledger.pending) clearTimeout(t)
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
