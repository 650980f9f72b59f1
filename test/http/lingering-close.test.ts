import { execFile } from 'node:child_process'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import { test } from 'tap'
import wechatAuth from '../../app.js'
import { errorHandler, notFoundHandler } from '../../http/error-handler.js'
import { LINGER_IDLE_MS, LINGER_MAX_MS } from '../../http/lingering-close.js'
import { serverOptions } from '../../http/server-options.js'
import type { Config } from '../../lib/schemas.js'

type Tap = { teardown: (fn: () => unknown) => void }

// Real sockets against a gateway listening as the standalone server (server.ts) does: the close lives in Node's
// HTTP server, which inject() bypasses.
async function listening (t: Tap, config: Partial<Config> = {}): Promise<number> {
  const app = Fastify(serverOptions({ LOG_LEVEL: 'warn', TRUST_PROXY: 'false', ...config }))
  t.teardown(async () => await app.close())
  app.setNotFoundHandler(notFoundHandler)
  app.setErrorHandler(errorHandler)
  await app.register(wechatAuth, {})
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

const execFileAsync = promisify(execFile)

test('a body far over the limit, answered from its Content-Length alone, still gets its answer', async (t) => {
  const port = await listening(t)
  // Closed at once, as Node does, a connection whose client is still writing is reset, and the client
  // reads EPIPE in place of the answer: 12 and 71 of these 100 before the lingering close.
  const fixture = fileURLToPath(new URL('../fixtures/big-bodies.ts', import.meta.url))
  const cases = [
    { path: '/nowhere', type: 'text/plain', status: 404, code: 'ROUTE_NOT_FOUND' },
    { path: '/auth/login', type: 'application/json', status: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }
  ]
  for (const { path, type, status, code } of cases) {
    const { stdout } = await execFileAsync(process.execPath, [...process.execArgv, fixture, `http://127.0.0.1:${port}${path}`, type, '100', String(8 * 1024 * 1024)], { timeout: 60_000 })
    t.same(JSON.parse(stdout), { [`${status} ${code} close`]: 100 }, `POST ${path}: 100 bodies of 8 MiB, each answered ${status} ${code}, then closed`)
  }
})

interface Exchange { text: string, answeredAfterMs: number, closedAfterMs: number }

/** Sends `head`, then `chunk` every `everyMs` (forever when `times` is Infinity), and reads until the server closes. */
async function dripping (port: number, head: string, chunk: string, everyMs: number, times: number): Promise<Exchange> {
  const socket = connect(port, '127.0.0.1')
  const started = Date.now()
  let text = ''
  let answeredAfterMs = -1
  socket.on('data', (d) => {
    text += d.toString()
    if (answeredAfterMs < 0) answeredAfterMs = Date.now() - started
  })
  socket.on('error', () => {})
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)))
  socket.write(head)
  for (let i = 0; i < times && !socket.destroyed && socket.writable; i++) {
    await sleep(everyMs)
    socket.write(chunk)
  }
  const closedAfterMs = await closed
  return { text, answeredAfterMs, closedAfterMs }
}

const answers = (text: string): string[] => text.match(/HTTP\/1\.1 \d{3}/g) ?? []
const NOWHERE = 'POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 104857600\r\n\r\n'

test('a lingering connection closes once its client stops sending, or after LINGER_MAX_MS of sending', async (t) => {
  const port = await listening(t)
  // The client stops after 10 bytes of the 100 MB it announced: closed once idle, not at the request deadline (30 s).
  const stalled = await dripping(port, NOWHERE, 'a'.repeat(10), 0, 1)
  t.same(answers(stalled.text), ['HTTP/1.1 404'], 'answered at once, once')
  t.ok(stalled.closedAfterMs < 2 * LINGER_IDLE_MS + 1500, `a client that stopped sending: closed after ${stalled.closedAfterMs} ms`)
  // A client that keeps sending (64 KiB every 50 ms) is cut off after LINGER_MAX_MS, not read to its 100 MB.
  const endless = await dripping(port, NOWHERE, 'a'.repeat(65536), 50, Infinity)
  t.same(answers(endless.text), ['HTTP/1.1 404'], 'answered at once, once')
  t.ok(endless.answeredAfterMs < 1000, `answered after ${endless.answeredAfterMs} ms`)
  t.ok(endless.closedAfterMs >= LINGER_MAX_MS - 500 && endless.closedAfterMs < LINGER_MAX_MS + 2000, `a client that kept sending: closed after ${endless.closedAfterMs} ms (${LINGER_MAX_MS} ms of lingering)`)
})

test('a lingering connection past the request deadline closes without a second answer', async (t) => {
  // Node's request deadline still counts for the body being discarded: it ends the linger, and its
  // 408 is not written after the answer already sent.
  const port = await listening(t, { HTTP_HEADERS_TIMEOUT_MS: 1000, HTTP_REQUEST_TIMEOUT_MS: 1000 })
  const slow = await dripping(port, NOWHERE, 'a'.repeat(1024), 100, Infinity)
  t.same(answers(slow.text), ['HTTP/1.1 404'], `one answer: ${JSON.stringify(slow.text.slice(0, 40))}`)
  t.ok(slow.closedAfterMs < LINGER_MAX_MS - 1000, `closed after ${slow.closedAfterMs} ms, at the request deadline (1000 ms, checked each second)`)
})
