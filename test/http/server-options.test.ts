import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { test } from 'tap'
import wechatAuth from '../../app.js'
import { parseTrustProxy, serverOptions } from '../../http/server-options.js'
import type { Config } from '../../lib/schemas.js'
import { boundedLabel } from '../../lib/metric-labels.js'
import { newSessionId, userTag } from '../../lib/ids.js'
import { refreshTokens } from '../../lib/refresh-tokens.js'
import { parseMetrics, valueOf } from '../prometheus.js'

const JWT_SECRET_FOR_IDS = 'a-secret-for-request-id-tests-0123456789abcdef'

type Tap = { teardown: (fn: () => unknown) => void }

test('TRUST_PROXY accepts booleans, hop counts and address lists', async (t) => {
  t.equal(parseTrustProxy('true'), true)
  t.equal(parseTrustProxy('false'), false)
  t.equal(parseTrustProxy(''), false)
  t.same(parseTrustProxy('10.0.0.1, 10.0.0.0/8'), ['10.0.0.1', '10.0.0.0/8'])
  const hops = parseTrustProxy('2')
  t.type(hops, 'function')
  if (typeof hops === 'function') {
    t.equal(hops('1.1.1.1', 0), true)
    t.equal(hops('1.1.1.1', 1), true)
    t.equal(hops('1.1.1.1', 2), false)
  }
})

test('server options redact credentials from logs and refuse unknown body properties', async (t) => {
  const o = serverOptions({ LOG_LEVEL: 'info', TRUST_PROXY: 'false' })
  t.match(o.logger, { level: 'info', redact: { paths: ['req.headers.authorization'] } })
  t.match(o.ajv, { customOptions: { removeAdditional: false } })
})

// Real sockets against a listening gateway: these limits live in Node's HTTP server, which inject() bypasses.
interface RawAnswer { status: number, body: Record<string, unknown>, closedAfterMs: number, noStore: boolean }

async function listening (t: Tap, config: Partial<Config> = {}, logs: string[] = []): Promise<number> {
  const app = Fastify(serverOptions({ LOG_LEVEL: 'debug', TRUST_PROXY: 'false', ...config }, { logStream: { write: (l) => { logs.push(l) } } }))
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, {})
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

/** A gateway with its metrics, listening as the standalone server does: it and its port. */
async function listeningWithMetrics (t: Tap): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify(serverOptions({ LOG_LEVEL: 'warn', TRUST_PROXY: 'false' }))
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { metrics: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as { port: number }).port }
}

/** Sends `parts` (a number is a pause in ms), then reads until the server closes the connection. */
async function raw (port: number, parts: Array<string | number>): Promise<RawAnswer> {
  const socket = connect(port, '127.0.0.1')
  const started = Date.now()
  let text = ''
  socket.on('data', (d) => { text += d.toString() })
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)))
  socket.on('error', () => {})
  for (const part of parts) {
    if (socket.destroyed) break
    if (typeof part === 'number') await sleep(part)
    else socket.write(part)
  }
  const closedAfterMs = await closed
  const [head = '', payload = ''] = text.split('\r\n\r\n')
  let body: Record<string, unknown> = {}
  try { body = JSON.parse(payload.trim() === '' ? '{}' : payload.replace(/^[0-9a-f]+\r\n/i, '').split('\r\n')[0] as string) } catch {}
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), body, closedAfterMs, noStore: /\r\ncache-control: no-store\r\n/i.test(`${head}\r\n`) }
}

const LOGIN = 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'

test('a request asking to switch protocols with a broken chunked body is refused at once, with a code', async (t) => {
  const port = await listening(t)
  const a = await raw(port, [`${LOGIN}Upgrade: websocket\r\nConnection: Upgrade\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`])
  t.match(a, { status: 400, body: { code: 'UPGRADE_REFUSED' } })
  t.ok(a.closedAfterMs < 1000, `answered and closed in ${a.closedAfterMs} ms`)
  const plain = await raw(port, [`${LOGIN}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`])
  t.match(plain, { status: 400, body: { code: 'HTTP_BAD_REQUEST' } }, 'without Upgrade: a coded 400 from the parser')
})

test('the configured timeouts are the ones enforced, within a second: headers, whole request, idle keep-alive', async (t) => {
  const port = await listening(t, { HTTP_HEADERS_TIMEOUT_MS: 1000, HTTP_REQUEST_TIMEOUT_MS: 2000, HTTP_KEEP_ALIVE_TIMEOUT_MS: 1500 })
  const drip = (text: string, everyMs: number): Array<string | number> => [...text].flatMap((c) => [c, everyMs])
  // Checked every second (Node's default is every 30 s), so cut within a second of the deadline, and
  // a loaded machine's second more; the idle socket's own timer runs a second past keepAliveTimeout.
  // Without the settings, each would take 30 s or more.
  const headers = await raw(port, ['POST /auth/login HTTP/1.1\r\n', ...drip('X-Slow: ' + 'a'.repeat(40), 100)])
  t.match(headers, { status: 408, body: { code: 'HTTP_REQUEST_TIMEOUT' } }, 'headers one byte every 100 ms')
  t.ok(headers.closedAfterMs >= 1000 && headers.closedAfterMs < 3000, `headers cut after ${headers.closedAfterMs} ms (1000 configured)`)
  const body = await raw(port, [`${LOGIN}Content-Length: 40\r\n\r\n`, ...drip('{"code":"' + 'a'.repeat(29), 250)])
  t.match(body, { status: 408, body: { code: 'HTTP_REQUEST_TIMEOUT' } }, 'a body one byte every 250 ms')
  t.ok(body.closedAfterMs >= 2000 && body.closedAfterMs < 4000, `body cut after ${body.closedAfterMs} ms (2000 configured)`)
  const idle = await raw(port, ['GET /health HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.equal(idle.status, 200)
  t.ok(idle.closedAfterMs >= 1500 && idle.closedAfterMs < 3500, `an idle keep-alive connection closed after ${idle.closedAfterMs} ms (1500 configured)`)
})

test('low-level errors answer with a code: bad request line, headers too large, an unknown Expect', async (t) => {
  const port = await listening(t)
  t.match(await raw(port, ['GARBAGE\r\n\r\n']), { status: 400, body: { code: 'HTTP_BAD_REQUEST' } })
  t.match(await raw(port, ['GET /health HTTP/1.1\r\nConnection: close\r\n\r\n']), { status: 400, body: { code: 'HTTP_BAD_REQUEST', message: /Host/ } }, 'HTTP/1.1 without Host')
  t.match(await raw(port, ['GET /health HTTP/1.0\r\n\r\n']), { status: 200 }, 'HTTP/1.0 needs none')
  t.match(await raw(port, [`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]), { status: 431, body: { code: 'HTTP_HEADERS_TOO_LARGE' } })
  t.match(await raw(port, [`${LOGIN}Expect: 200-ok\r\nContent-Length: 2\r\n\r\n{}`]), { status: 417, body: { code: 'HTTP_EXPECTATION_FAILED' }, noStore: true })
  t.match(await raw(port, ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n']), { status: 405, body: { code: 'HTTP_METHOD_NOT_ALLOWED' } }, 'CONNECT: not a proxy (Node closed it without a word)')
  const long = await raw(port, [`GET /auth/qr/${'s3cret'.repeat(600)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`])
  t.match(long, { status: 414, body: { code: 'HTTP_URI_TOO_LONG', error: 'URI Too Long', message: /3072 characters/ }, noStore: true }, 'a path segment over the router\'s limit, not to be cached')
  t.notMatch(JSON.stringify(long.body), /s3cret/, 'the path not echoed')
  t.match(await raw(port, ['GET /auth/qr/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']), { status: 400, body: { code: 'FST_ERR_BAD_URL', message: /does not decode/ }, noStore: true }, 'a parameter that does not decode')
})

test('the answers before Fastify are counted in wechat_auth_errors_total, by code, like every other error', async (t) => {
  const { app, port } = await listeningWithMetrics(t)
  t.match(await raw(port, ['GARBAGE\r\n\r\n']), { status: 400, body: { code: 'HTTP_BAD_REQUEST' } }, 'a malformed request line (Node\'s clientError)')
  t.match(await raw(port, ['GET /health HTTP/1.1\r\nConnection: close\r\n\r\n']), { status: 400, body: { code: 'HTTP_BAD_REQUEST' } }, 'no Host')
  t.match(await raw(port, ['GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n']), { status: 400, body: { code: 'UPGRADE_REFUSED' } })
  t.match(await raw(port, [`${LOGIN}Expect: 200-ok\r\nContent-Length: 2\r\n\r\n{}`]), { status: 417, body: { code: 'HTTP_EXPECTATION_FAILED' }, noStore: true })
  t.match(await raw(port, ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n']), { status: 405 })
  t.match(await raw(port, [`GET /auth/qr/${'x'.repeat(3100)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]), { status: 414 })
  const samples = parseMetrics(await app.wechatAuthMetrics.registry.metrics())
  const count = (code: string): number => valueOf(samples, 'wechat_auth_errors_total', { code })
  t.same([count('HTTP_BAD_REQUEST'), count('UPGRADE_REFUSED'), count('HTTP_EXPECTATION_FAILED'), count('HTTP_METHOD_NOT_ALLOWED'), count('HTTP_URI_TOO_LONG')], [2, 1, 1, 1, 1])
  // Their codes are labelled as themselves even once a label has seen its bound of other values.
  const code = boundedLabel(0)
  t.same(['HTTP_BAD_REQUEST', 'HTTP_EXPECTATION_FAILED', 'HTTP_REQUEST_TIMEOUT', 'HTTP_HEADERS_TOO_LARGE', 'SERVER_OVERLOADED', 'SOMETHING_ELSE'].map(code),
    ['HTTP_BAD_REQUEST', 'HTTP_EXPECTATION_FAILED', 'HTTP_REQUEST_TIMEOUT', 'HTTP_HEADERS_TOO_LARGE', 'SERVER_OVERLOADED', 'other'], 'load shedding\'s code too, which has no error class')
})

test('inside a host app, the gateway refuses an upgrade request on its own routes too', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, {})
  const res = await app.inject({ method: 'POST', url: '/auth/login', headers: { connection: 'keep-alive, Upgrade', upgrade: 'websocket' }, payload: { code: 'alice' } })
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'UPGRADE_REFUSED')
  t.equal(res.headers.connection, 'close')
})

test('a client that goes away in the middle of its body is not an error of the server', async (t) => {
  const logs: string[] = []
  const port = await listening(t, {}, logs)
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(`${LOGIN}Content-Length: 100\r\n\r\n{"code":`)
  await sleep(100)
  socket.destroy()
  await sleep(300)
  const lines = logs.map((l) => JSON.parse(l) as { level: number, msg: string, err?: unknown })
  t.same(lines.filter((l) => l.level >= 50), [], 'nothing at error level')
  t.ok(lines.some((l) => l.level <= 30 && /went away|aborted/i.test(l.msg)), 'said at info or below')
})

test('request ids: a sane x-request-id is kept, answered and in every log line of the request; anything else gets a new one', async (t) => {
  const logs: string[] = []
  const port = await listening(t, {}, logs)
  const get = async (headers: Record<string, string>) => await fetch(`http://127.0.0.1:${port}/auth/me`, { headers })
  const kept = await get({ 'x-request-id': 'trace-0af7651916cd43dd8448eb211c80319c' })
  t.equal(kept.headers.get('x-request-id'), 'trace-0af7651916cd43dd8448eb211c80319c', 'answered back')
  t.equal((await kept.json() as { code: string }).code, 'AUTH_TOKEN_MISSING')
  const lines = logs.map((l) => JSON.parse(l) as { reqId?: string, msg: string }).filter((l) => l.reqId === 'trace-0af7651916cd43dd8448eb211c80319c')
  t.ok(lines.length >= 2, `every line of the request carries it (${lines.map((l) => l.msg).join(' / ')})`)
  for (const insane of ['has space', 'x'.repeat(129), 'line\\nbreak', '']) {
    const res = await get(insane === '' ? {} : { 'x-request-id': insane })
    t.match(res.headers.get('x-request-id'), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, `${insane.slice(0, 20) || 'none'}: a new one`)
  }
  t.notOk(logs.some((l) => l.includes('has space')), 'an id refused is not logged either')
  // A credential a client put there (every log line and audit event carries the id): a JWT, a refresh token.
  const jwt = `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"a"}').toString('base64url')}.c2lnbmF0dXJl`
  const refreshToken = refreshTokens(JWT_SECRET_FOR_IDS, undefined).first({ tag: userTag('wx0123456789abcdef', 'a'), sid: newSessionId() })
  for (const credential of [jwt, refreshToken]) {
    // Alone, or after a prefix or before a suffix the id's characters allow (`rt:<token>`, `<token>/1`).
    for (const sent of [credential, `rt:${credential}`, `a@${credential}`, `${credential}/1`, `x=${credential}+y`, `rt.${credential}`, `rt-${credential}`, `rt_${credential}`, `key-${credential}`, `${credential}.1`, `${credential}-1`]) {
      const res = await get({ 'x-request-id': sent })
      t.not(res.headers.get('x-request-id'), sent, `${sent.slice(0, 12)}…: a new id`)
    }
    t.notOk(logs.some((l) => l.includes(credential)), 'and never logged')
  }
  for (const id of ['monkey.business.1', 'key.value.x', 'eyes.only.please']) t.equal((await get({ 'x-request-id': id })).headers.get('x-request-id'), id, `${id}: kept (no JWT header in it)`)
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  t.equal((await get({ 'x-request-id': traceparent })).headers.get('x-request-id'), traceparent, 'a W3C traceparent (55 characters) is kept')
  const other = await listening(t, { REQUEST_ID_HEADER: 'X-Correlation-Id' })
  const res = await fetch(`http://127.0.0.1:${other}/health/live`, { headers: { 'x-correlation-id': 'abc.123' } })
  t.equal(res.headers.get('x-correlation-id'), 'abc.123', 'the configured header')
})

test('a client that resets its connection mid-request is not counted; one that closes it mid-request is answered and counted once, as a request cut short', async (t) => {
  const { app, port } = await listeningWithMetrics(t)
  const errors = async (): Promise<string[]> => parseMetrics(await app.wechatAuthMetrics.registry.metrics())
    .filter((s) => s.name === 'wechat_auth_errors_total' && s.value > 0).map((s) => `${s.labels.code} ${s.value}`)
  const cutShort = [`${LOGIN}Content-Length: 100\r\n\r\n{"code":`, 'POST /nope HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":', 'POST /auth/login HTTP/1.1\r\nHo']
  const send = async (text: string, how: 'reset' | 'end'): Promise<string> => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    socket.on('data', (d) => { answer += d.toString() })
    socket.on('error', () => {})
    const closed = new Promise((resolve) => socket.on('close', resolve))
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(text)
    await sleep(50)
    if (how === 'reset') socket.resetAndDestroy()
    else socket.end()
    await closed
    return answer
  }
  // Reset (RST): gone for sure. Counted neither as ECONNRESET nor as a bad request.
  for (const text of cutShort) await send(text, 'reset')
  await sleep(100)
  t.same(await errors(), [], 'no error counted for a reset')
  // Closed (FIN): the client may still read, as a half-close does; it is told, once.
  for (const text of cutShort) t.match(await send(text, 'end'), /^HTTP\/1\.1 400 [^]*"code":"HTTP_BAD_REQUEST"/, `${text.slice(0, 20)}…: answered`)
  await sleep(100)
  t.same(await errors(), ['HTTP_BAD_REQUEST 3'], 'each counted once, with the code answered (not ECONNRESET too)')
})
