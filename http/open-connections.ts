// The standalone server's open connections (http/server-options.ts tracks them), for a stop (server.ts):
// their lingering ended, their answers told to close the connection after them.
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { answerOn, lingerOnClose, stopLingering } from './lingering-close.js'

const OPEN = Symbol('openConnections')
type Tracked = Server & { [OPEN]?: Set<Socket> }

/** Keeps `server`'s connections, counted per connection, not per request; each gets the lingering close. */
export function trackConnections (server: Server): void {
  const open = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    open.add(socket)
    lingerOnClose(socket)
    socket.once('close', () => open.delete(socket))
  })
  ;(server as Tracked)[OPEN] = open
}

/**
 * As a stop begins: `server`'s connections linger no more (http/lingering-close.ts), those that do
 * close now, and a later answer that closes closes at once. A client still sending a large body then
 * may see a reset: the drain's budget is for requests in flight.
 */
export function endLingers (server: Server): void {
  for (const socket of (server as Tracked)[OPEN] ?? []) stopLingering(socket)
}

/**
 * Tells each answer `server` has not sent yet to close its connection after it (`Connection: close`),
 * as a stop begins: a client or proxy that reused a connection answered `keep-alive` would send its
 * next request into a socket the stop is closing (ECONNRESET; a proxy's 502 for a POST it cannot
 * retry).
 */
export function closeAfterAnswers (server: Server): void {
  endLingers(server)
  for (const socket of (server as Tracked)[OPEN] ?? []) {
    const answer = answerOn(socket)
    if (answer !== null && !answer.headersSent) answer.setHeader('connection', 'close')
  }
}
