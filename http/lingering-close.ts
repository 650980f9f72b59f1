// A lingering close, as nginx does (lingering_close): an answer that closes its connection before
// the request's body has all arrived (a 413 or a 404 read from Content-Length alone) is not followed
// by an immediate close. Node's own close (socket.destroySoon) ends the socket as soon as the answer
// is written: bytes the client is still sending then arrive at a closed socket, the kernel answers
// them with a reset, and a client still writing its body reports EPIPE or ECONNRESET instead of the
// answer (measured: 12 and 71 of 100 undici POSTs of 8 MiB, to an unknown route and to a login).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'

/** A lingering socket that received nothing for this long (since the answer or its last byte) is closed. */
export const LINGER_IDLE_MS = 1000
/** How often a lingering socket is looked at. */
const CHECK_MS = 250
/** The longest a socket lingers: a client that keeps sending past it is cut off (reset) as before. */
export const LINGER_MAX_MS = 5000

const REQUEST = Symbol('request')
const ANSWER = Symbol('answer')
const LINGER = Symbol('linger')
const NO_LINGER = Symbol('noLinger')
// Node's own: the answer the socket writes or will write next (_http_server.js), and whether it closes.
type Answer = ServerResponse & { _last?: boolean }
// The request noted is the one Node's parser holds too (parser.incoming) until the next: kept no longer.
type Tracked = Socket & { [REQUEST]?: IncomingMessage | undefined, [ANSWER]?: ServerResponse, [LINGER]?: () => void, [NO_LINGER]?: true, _httpMessage?: Answer | null }

const plainDestroySoon = Socket.prototype.destroySoon

/**
 * Node calls this once the last answer on `this` socket is written. If its request is whole (or asks
 * to switch protocols, whose body Node's parser never reads), or a stop has begun, the socket closes
 * at once, as Node does. Otherwise it keeps reading, and Node's parser keeps discarding the body,
 * until the body has arrived, the client sends nothing for LINGER_IDLE_MS, or LINGER_MAX_MS have
 * passed; then it closes. The writing side stays open until then: a client whose socket reads the end
 * of the stream ends its own side (undici, Node's http), and its next write of the body fails (EPIPE).
 */
function lingeringDestroySoon (this: Tracked): void {
  const request = this[REQUEST]
  if (request === undefined || request.complete || this[NO_LINGER] === true || this.destroyed || !this.readable) {
    plainDestroySoon.call(this)
    return
  }
  const started = performance.now()
  let lastRead = started
  let seen = this.bytesRead
  const close = (): void => {
    clearInterval(check)
    request.removeListener('end', close)
    this[LINGER] = undefined
    if (!this.destroyed) plainDestroySoon.call(this)
  }
  const check = setInterval(() => {
    const now = performance.now()
    if (this.bytesRead !== seen) lastRead = now
    seen = this.bytesRead
    if (now - lastRead >= LINGER_IDLE_MS || now - started >= LINGER_MAX_MS) close()
  }, CHECK_MS)
  this[LINGER] = close
  request.once('end', close)
  // Read to its end whoever stopped reading it (Fastify's parser, past its limit): unread, it would
  // stop the socket's reading.
  request.resume()
  this.once('close', close)
}

/** Gives `socket` the lingering close; call it once, as the server accepts the connection. */
export function lingerOnClose (socket: Socket): void {
  socket.destroySoon = lingeringDestroySoon
}

/**
 * Notes `request` and its `answer` as its socket's current ones; call it for each request.
 * `bodyRead` is false for a request whose body Node's parser will not read (one that asks to switch
 * protocols): its socket closes at once.
 */
export function noteRequest (request: IncomingMessage, answer: ServerResponse, bodyRead: boolean): void {
  const socket = request.socket as Tracked
  socket[REQUEST] = bodyRead ? request : undefined
  socket[ANSWER] = answer
}

/** The answer `socket` writes, or will write next (Node's own `_httpMessage`, as http-terminator finds it). */
export const answerOn = (socket: Socket): Answer | null => (socket as Tracked)._httpMessage ?? null

/** Whether `socket` has answered its last request and only discards what the client still sends. */
export const isLingering = (socket: Socket): boolean => (socket as Tracked)[LINGER] !== undefined

/**
 * A request Node parsed behind one answered `Connection: close` (pipelined after its body, while the
 * connection lingers or closes, or while that answer is still owed): neither run (RFC 9112 9.6) nor
 * answered; Node would never write its answer. Its body is discarded. `answer` is its own.
 */
export function unanswerable (request: IncomingMessage, answer: ServerResponse): boolean {
  const socket = request.socket
  const before = answerOn(socket)
  const behindClose = before !== null && before !== answer && (before._last === true || before.getHeader('connection') === 'close')
  if (!behindClose && !isLingering(socket) && socket.writable) return false
  request.resume()
  return true
}

/**
 * For a client error on `socket` (a parse error, a request deadline) that Node would answer with a
 * raw 400 or 408: whether an answer stands in the way, in which case it is handled here. An answer
 * given already, or being written, to a request still being read (a 401 before its body), or owed to
 * a request read whole (the error is about bytes after it): a raw answer now would be read in its
 * place, or as the answer to the next request. The socket closes after that answer (at once if it
 * is given); false when the error is to be answered.
 */
export function closeAfterAnswer (socket: Socket): boolean {
  const s = socket as Tracked
  const owed = answerOn(s)
  if (owed !== null && (owed.req.complete || owed.headersSent)) {
    if (!owed.headersSent) owed.setHeader('connection', 'close')
    owed.once('finish', () => { s.destroySoon() })
    return true
  }
  const { [REQUEST]: request, [ANSWER]: answer } = s
  if (!isLingering(s) && (request === undefined || request.complete || answer?.writableFinished !== true)) return false
  s.destroy()
  return true
}

/** As a stop begins: `socket` lingers no more, now or after its answer in flight; it closes as Node closes. */
export function stopLingering (socket: Socket): void {
  (socket as Tracked)[NO_LINGER] = true
  ;(socket as Tracked)[LINGER]?.()
}
