import { execFile } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { test } from 'tap'
import wechatAuth from '../../app.js'
import { errorHandler, notFoundHandler } from '../../http/error-handler.js'
import { LINGER_IDLE_MS, LINGER_MAX_MS } from '../../http/lingering-close.js'
import { closeAfterAnswers } from '../../http/open-connections.js'
import { serverOptions } from '../../http/server-options.js'
import type { Config } from '../../lib/schemas.js'

type Tap = { teardown: (fn: () => unknown) => void }

// Real sockets against a gateway listening as the standalone server (server.ts) does: the close lives in Node's
// HTTP server, which inject() bypasses.
async function listening (t: Tap, config: Partial<Config> = {}): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify(serverOptions({ LOG_LEVEL: 'warn', TRUST_PROXY: 'false', ...config }))
  t.teardown(async () => await app.close())
  app.setNotFoundHandler(notFoundHandler)
  app.setErrorHandler(errorHandler)
  await app.register(wechatAuth, {})
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as { port: number }).port }
}

const execFileAsync = promisify(execFile)

test('a body far over the limit, answered from its Content-Length alone, still gets its answer', async (t) => {
  const { port } = await listening(t)
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

/**
 * Sends `head`, then `chunk` every `everyMs`, `times` times (forever when Infinity), and reads until
 * the server closes; `onAnswer` runs as the first bytes of the answer arrive.
 */
async function dripping (port: number, head: string, chunk: string, everyMs: number, times: number, onAnswer = (): void => {}): Promise<Exchange> {
  const socket = connect(port, '127.0.0.1')
  const started = Date.now()
  let text = ''
  let answeredAfterMs = -1
  socket.on('data', (d) => {
    text += d.toString()
    if (answeredAfterMs >= 0) return
    answeredAfterMs = Date.now() - started
    onAnswer()
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
const UNKNOWN_EXPECT = 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: foo\r\nContent-Length: 104857600\r\n\r\n'

test('a lingering connection closes once its client stops sending, or after LINGER_MAX_MS of sending', async (t) => {
  const { port } = await listening(t)
  // The client stops after 10 bytes of the 100 MB it announced: closed once idle, not at the request
  // deadline (30 s); kept open until then, as the client may still be sending. An Expect refused: the same.
  for (const [head, status] of [[NOWHERE, '404'], [UNKNOWN_EXPECT, '417']] as const) {
    const stalled = await dripping(port, head, 'a'.repeat(10), 0, 1)
    t.same(answers(stalled.text), [`HTTP/1.1 ${status}`], 'answered at once, once')
    t.ok(stalled.closedAfterMs >= LINGER_IDLE_MS - 100 && stalled.closedAfterMs < LINGER_IDLE_MS + 1500, `${status}, a client that stopped sending: closed after ${stalled.closedAfterMs} ms (${LINGER_IDLE_MS} ms idle)`)
  }
  // Idle counts from the last byte: 1 KiB every 400 ms for 2.4 s is read to its end, then closed once idle.
  const slow = await dripping(port, NOWHERE, 'a'.repeat(1024), 400, 6)
  t.same(answers(slow.text), ['HTTP/1.1 404'], 'answered at once, once')
  t.ok(slow.closedAfterMs >= 2400 + LINGER_IDLE_MS - 100 && slow.closedAfterMs < 2400 + LINGER_IDLE_MS + 1500, `a client sending every 400 ms: closed after ${slow.closedAfterMs} ms`)
  // A client that keeps sending (64 KiB every 50 ms) is cut off after LINGER_MAX_MS, not read to its 100 MB.
  const endless = await dripping(port, NOWHERE, 'a'.repeat(65536), 50, Infinity)
  t.same(answers(endless.text), ['HTTP/1.1 404'], 'answered at once, once')
  t.ok(endless.answeredAfterMs < 1000, `answered after ${endless.answeredAfterMs} ms`)
  t.ok(endless.closedAfterMs >= LINGER_MAX_MS - 500 && endless.closedAfterMs < LINGER_MAX_MS + 2000, `a client that kept sending: closed after ${endless.closedAfterMs} ms (${LINGER_MAX_MS} ms of lingering)`)
})

test('a request pipelined behind the discarded body is neither run nor answered', async (t) => {
  const { app, port } = await listening(t)
  // A login over its 4 KiB (413, Connection: close), then in the same write its body and a second
  // login, and a request without Host (Node's listener would answer it 400 at once).
  const over = 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n'
  const pipelined = async (code: string): Promise<void> => {
    const login = JSON.stringify({ code })
    const second = `POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${login.length}\r\n\r\n${login}`
    const exchange = await dripping(port, `${over}${' '.repeat(10000)}${second}GET /health HTTP/1.1\r\n\r\n`, '', 0, 0)
    t.same(answers(exchange.text), ['HTTP/1.1 413'], `one answer: ${JSON.stringify(exchange.text.slice(0, 40))}`)
    // Run, the login would have spent the code (WX_CODE_USED now) and opened a session no one holds.
    const res = await fetch(`http://127.0.0.1:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: login })
    t.equal(res.status, 200, 'the pipelined login was not run: its code is still good')
  }
  await pipelined('pipa.1')
  // With a 'data' listener on the socket (an APM's), Node parses the whole write before the 413 is
  // written: the second login comes while that answer is still owed, and is refused all the same.
  app.server.on('connection', (socket: Socket) => { socket.on('data', () => {}) })
  await pipelined('pipa.2')
})

test('requests whose client half-closes, HTTP/1.0 and Connection: close ones are answered as before', async (t) => {
  const { port } = await listening(t)
  const exchange = async (text: string, halfClose: boolean): Promise<string[]> => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.on('data', (d) => { received += d.toString() })
    socket.on('error', () => {})
    const closed = new Promise((resolve) => socket.on('close', resolve))
    if (halfClose) socket.end(text)
    else socket.write(text)
    await closed
    return answers(received)
  }
  t.same(await exchange('GET /health HTTP/1.1\r\nHost: x\r\n\r\n', true), ['HTTP/1.1 200'], 'a request, then the client\'s FIN')
  t.same(await exchange('GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health/live HTTP/1.1\r\nHost: x\r\n\r\n', true), ['HTTP/1.1 200', 'HTTP/1.1 200'], 'two pipelined, then FIN')
  t.same(await exchange('GET /health HTTP/1.0\r\n\r\n', false), ['HTTP/1.1 200'], 'HTTP/1.0')
  t.same(await exchange('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', false), ['HTTP/1.1 200'], 'Connection: close')
})

test('a malformed request pipelined behind one still being answered does not take its answer', async (t) => {
  const { port } = await listening(t)
  // A login with Connection: close, then more bytes: Node's parser refuses what follows a closing
  // request, while the login is being answered. Answered 400 in its place before.
  const login = JSON.stringify({ code: 'pipb.1' })
  const exchange = await dripping(port, `POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${login.length}\r\n\r\n${login}GET /health HTTP/1.1\r\nHost: x\r\n\r\n`, '', 0, 0)
  t.same(answers(exchange.text), ['HTTP/1.1 200'], `the login's answer, and only it: ${JSON.stringify(exchange.text.slice(0, 40))}`)
  t.match(exchange.text, /"accessToken":"/, 'with its tokens')
})

test('a lingering connection past the request deadline closes without a second answer', async (t) => {
  // Node's request deadline still counts for the body being discarded: it ends the linger, and its
  // 408 is not written after the answer already sent. The same for an answer that keeps the
  // connection (401 before the body): a 408 there would be read as the answer to the next request.
  const { port } = await listening(t, { HTTP_HEADERS_TIMEOUT_MS: 1000, HTTP_REQUEST_TIMEOUT_MS: 1000 })
  const slow = await dripping(port, NOWHERE, 'a'.repeat(1024), 100, Infinity)
  t.same(answers(slow.text), ['HTTP/1.1 404'], `one answer: ${JSON.stringify(slow.text.slice(0, 40))}`)
  t.ok(slow.closedAfterMs < LINGER_MAX_MS - 1000, `closed after ${slow.closedAfterMs} ms, at the request deadline (1000 ms, checked each second)`)
  const kept = await dripping(port, 'POST /auth/logout HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n', ' ', 100, 40)
  t.same(answers(kept.text), ['HTTP/1.1 401'], `one answer: ${JSON.stringify(kept.text.slice(0, 40))}`)
  t.ok(kept.closedAfterMs < 3500, `closed after ${kept.closedAfterMs} ms, at the request deadline`)
})

test('a stop ends every linger at once, and lets none begin', async (t) => {
  const { app, port } = await listening(t)
  // A client still sending when the stop begins (300 ms after its answer): closed then, not LINGER_MAX_MS later.
  const lingering = await dripping(port, NOWHERE, 'a'.repeat(1024), 50, Infinity, () => { setTimeout(() => { closeAfterAnswers(app.server) }, 300) })
  t.same(answers(lingering.text), ['HTTP/1.1 404'], 'answered')
  t.ok(lingering.closedAfterMs < 1500, `closed after ${lingering.closedAfterMs} ms`)
  // A connection open as the stop begins, its request sent after: closed as Node closes, at once.
  const socket = connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  closeAfterAnswers(app.server)
  socket.on('error', () => {})
  let text = ''
  socket.on('data', (d) => { text += d.toString() })
  const started = Date.now()
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)))
  socket.write(`${NOWHERE}${'a'.repeat(1024)}`)
  const closedAfterMs = await closed
  t.same(answers(text), ['HTTP/1.1 404'], 'answered')
  t.ok(closedAfterMs < LINGER_IDLE_MS - 200, `closed after ${closedAfterMs} ms, without lingering`)
})
