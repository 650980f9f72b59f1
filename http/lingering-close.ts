// A lingering close, as nginx does (lingering_close): an answer that closes its connection before
// the request's body has all arrived (a 413 or a 404 read from Content-Length alone) is not followed
// by an immediate close. Node's own close (socket.destroySoon) ends the socket as soon as the answer
// is written: bytes the client is still sending then arrive at a closed socket, the kernel answers
// them with a reset, and a client still writing its body reports EPIPE or ECONNRESET instead of the
// answer (measured: 14 of 200 undici POSTs of 1 MiB and a byte to an unknown route).
import type { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'

/** How often a lingering socket is checked: one that received nothing since the last check is closed. */
export const LINGER_IDLE_MS = 250
/** The longest a socket lingers: a client that keeps sending past it is cut off (reset) as before. */
export const LINGER_MAX_MS = 5000

const REQUEST = Symbol('lastRequest')
const LINGERING = Symbol('lingering')
type Lingering = Socket & { [REQUEST]?: IncomingMessage, [LINGERING]?: true }

const plainDestroySoon = Socket.prototype.destroySoon

/**
 * Node calls this once the last answer on `this` socket is written. If its request is whole (or asks
 * to switch protocols, whose body Node's parser never reads), the socket closes at once, as Node
 * does. Otherwise it keeps reading, and Node's parser keeps discarding the body, until the body has
 * arrived, the client stops sending for LINGER_IDLE_MS, or LINGER_MAX_MS have passed; then it closes.
 * The writing side stays open until then: a client whose socket reads the end of the stream ends its
 * own side (undici, Node's http), and its next write of the body fails with EPIPE.
 */
function lingeringDestroySoon (this: Lingering): void {
  const request = this[REQUEST]
  if (request === undefined || request.complete || this.destroyed || !this.readable) {
    plainDestroySoon.call(this)
    return
  }
  this[LINGERING] = true
  const started = performance.now()
  let seen = this.bytesRead
  const close = (): void => {
    clearInterval(check)
    request.removeListener('end', close)
    if (!this.destroyed) plainDestroySoon.call(this)
  }
  const check = setInterval(() => {
    if (this.bytesRead === seen || performance.now() - started >= LINGER_MAX_MS) close()
    seen = this.bytesRead
  }, LINGER_IDLE_MS)
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
 * Notes `request` as its socket's current one, for the lingering close to judge; call it for each.
 * `bodyRead` is false for a request whose body Node's parser will not read (one that asks to switch
 * protocols): its socket closes at once.
 */
export function noteRequest (request: IncomingMessage, bodyRead: boolean): void {
  (request.socket as Lingering)[REQUEST] = bodyRead ? request : undefined
}

/** Whether `socket` has answered its last request and only discards what the client still sends. */
export const isLingering = (socket: Socket): boolean => (socket as Lingering)[LINGERING] === true
