// The gateway's error handler: what it answers and how loudly it logs each kind of failure.
import createError from '@fastify/error'
import Fastify from 'fastify'
import { test } from 'tap'
import { errorHandler, notFoundHandler } from '../../http/error-handler.js'
import { RouteNotFoundError, StoreUnavailableError, WxTimeoutError } from '../../lib/errors.js'

function call (error: Error, routeOptions: { schema?: { tags?: string[] } } = {}) {
  const lines: Array<{ level: string, obj: Record<string, unknown>, msg: string }> = []
  const log = Object.fromEntries(['error', 'warn', 'info', 'debug'].map((level) => [level, (obj: Record<string, unknown>, msg: string) => { lines.push({ level, obj, msg }) }]))
  let sent: { status: number, body: Record<string, unknown> } | undefined
  let headers: Record<string, string> | undefined
  const reply = {
    code: (status: number) => ({ send: (body: Record<string, unknown>) => { sent = { status, body }; return reply } }),
    headers: (values: Record<string, string>) => { headers = values; return reply }
  }
  errorHandler(error as never, { raw: { destroyed: false }, log, routeOptions } as never, reply as never)
  return { lines, sent, headers }
}

test('WeChat or Redis failing is a warning without a stack; a bug is an error with one; a refusal is info', async (t) => {
  const timeout = call(new WxTimeoutError({ cause: new Error('headers timeout after 5000 ms') }))
  t.same(timeout.sent, { status: 504, body: { statusCode: 504, code: 'WX_TIMEOUT', error: 'Gateway Timeout', message: 'WeChat did not answer in time' } })
  t.same(timeout.lines.map((l) => l.level), ['warn'])
  t.same(timeout.lines[0]?.obj, { code: 'WX_TIMEOUT', statusCode: 504, cause: 'Error: headers timeout after 5000 ms' }, 'the code and the cause, no stack')
  t.same(call(new StoreUnavailableError()).lines.map((l) => [l.level, l.obj.code]), [['warn', 'STORE_UNAVAILABLE']])
  const bug = call(new TypeError('x is undefined'))
  t.same(bug.lines.map((l) => l.level), ['error'])
  t.ok((bug.lines[0]?.obj.err as Error).stack, 'a bug keeps its stack in the log')
  t.same(bug.sent?.body, { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal Server Error' }, 'never its message in the answer')
  const missing = call(new RouteNotFoundError('GET', '/nope'))
  t.same(missing.lines.map((l) => [l.level, l.obj]), [['info', { code: 'ROUTE_NOT_FOUND', statusCode: 404 }]], 'a 404 at info, no stack')
})

test('a host route\'s own 4xx keeps its status, its code (or HTTP_<status>) and its message, at info; its 5xx stays a 500 without details', async (t) => {
  const OrderNotFound = createError('ORDER_NOT_FOUND', 'No such order', 404)
  const plain = Object.assign(new Error('Order not found'), { statusCode: 404 })
  // What @fastify/sensible's httpErrors (http-errors) throw: `status` and `statusCode`, `expose`, no code.
  const conflict = Object.assign(new Error('Already paid'), { status: 409, statusCode: 409, expose: true })
  const hidden = Object.assign(new Error('user 42 is over the quota of plan b7'), { status: 429, expose: false, headers: { 'retry-after': '30' } })
  const oddCode = Object.assign(new Error('Gone'), { statusCode: 410, code: 'order gone' })
  const cases: Array<[Error, number, Record<string, unknown>]> = [
    [new OrderNotFound(), 404, { statusCode: 404, code: 'ORDER_NOT_FOUND', error: 'Not Found', message: 'No such order' }],
    [plain, 404, { statusCode: 404, code: 'HTTP_404', error: 'Not Found', message: 'Order not found' }],
    [conflict, 409, { statusCode: 409, code: 'HTTP_409', error: 'Conflict', message: 'Already paid' }],
    [hidden, 429, { statusCode: 429, code: 'HTTP_429', error: 'Too Many Requests', message: 'Too Many Requests' }],
    [oddCode, 410, { statusCode: 410, code: 'HTTP_410', error: 'Gone', message: 'Gone' }]
  ]
  for (const [error, status, body] of cases) {
    const { sent, lines, headers } = call(error)
    t.same(sent, { status, body }, String(body.code))
    t.same(lines.map((l) => [l.level, l.obj]), [['info', { code: body.code, statusCode: status }]], 'a refusal: info, no stack')
    if (error === hidden) t.same(headers, { 'retry-after': '30' }, 'its headers, as Fastify\'s default handler sends them')
  }
  const hostOutage = call(Object.assign(new Error('the orders database is down at 10.0.0.7'), { statusCode: 503 }))
  t.same(hostOutage.sent?.body, { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal Server Error' }, 'a 5xx of the host\'s: details in the log only')
  t.same(hostOutage.lines.map((l) => l.level), ['error'])
  // On a gateway route, a host hook (resolveUser, onPhoneNumber) that throws answers 500 as documented, whatever its status.
  const hook = call(conflict, { schema: { tags: ['wechat-auth: sessions'] } })
  t.same(hook.sent?.body, { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal Server Error' })
  t.same(hook.lines.map((l) => l.level), ['error'])
})

test('set as a host\'s error handler (docs/embedding.md), its own 4xx answers keep their status over HTTP', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  app.setErrorHandler(errorHandler)
  const OrderNotFound = createError('ORDER_NOT_FOUND', 'No such order', 404)
  app.get('/coded', async () => { throw new OrderNotFound() })
  app.get('/plain', async () => { throw Object.assign(new Error('Order not found'), { statusCode: 404 }) })
  app.post('/validated', { schema: { body: { type: 'object', required: ['a'], properties: { a: { type: 'string' } } } } }, async () => 'ok')
  app.get('/bug', async () => { throw new TypeError('x is undefined') })
  const answers = await Promise.all([['GET', '/coded'], ['GET', '/plain'], ['POST', '/validated'], ['GET', '/bug']].map(async ([method, url]) => {
    const res = await app.inject({ method: method as 'GET', url, ...(method === 'POST' ? { payload: {} } : {}) })
    return [res.statusCode, res.json().code]
  }))
  t.same(answers, [[404, 'ORDER_NOT_FOUND'], [404, 'HTTP_404'], [400, 'FST_ERR_VALIDATION'], [500, 'INTERNAL_ERROR']])
})

test('no such route is 404 ROUTE_NOT_FOUND whatever its body: malformed, empty or oversized JSON is not read as a 400 or 413', async (t) => {
  const app = Fastify({ bodyLimit: 64 })
  t.teardown(async () => await app.close())
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(notFoundHandler)
  app.post('/known', async () => 'ok')
  const json = { 'content-type': 'application/json' }
  const cases: Array<[string, string, string]> = [['POST', '/nope', '{'], ['PUT', '/known', '{'], ['DELETE', '/nope', ''], ['POST', '/nope', `"${'a'.repeat(100)}"`]]
  for (const [method, url, payload] of cases) {
    const res = await app.inject({ method: method as 'POST', url, headers: json, payload })
    t.same([res.statusCode, res.json().code], [404, 'ROUTE_NOT_FOUND'], `${method} ${url} with ${payload.length} bytes`)
  }
  const known = await app.inject({ method: 'POST', url: '/known', headers: json, payload: '{' })
  t.same([known.statusCode, known.json().code], [400, 'FST_ERR_CTP_INVALID_JSON_BODY'], 'a route that is there still refuses the body')
  const big = await app.inject({ method: 'POST', url: '/known', headers: json, payload: `"${'a'.repeat(100)}"` })
  t.same([big.statusCode, big.json().code], [413, 'FST_ERR_CTP_BODY_TOO_LARGE'])
})

test('over HTTP, counted as answered: an upstream reset of a host route is its error, not a client gone; a 404 with a bad body counts as ROUTE_NOT_FOUND', async (t) => {
  const { default: wechatAuth } = await import('../../app.js')
  const { parseMetrics, valueOf } = await import('../prometheus.js')
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { metrics: true })
  app.setErrorHandler(errorHandler)
  // A host route whose upstream reset its connection: the client is still there, its body was read.
  app.post('/orders', async () => { throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const upstream = await fetch(`${base}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
  t.same([upstream.status, (await upstream.json() as { code: string }).code], [500, 'INTERNAL_ERROR'], 'not 400 "not received in full"')
  const noRoute = await fetch(`${base}/auth/nowhere`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })
  t.same([noRoute.status, (await noRoute.json() as { code: string }).code], [404, 'ROUTE_NOT_FOUND'])
  const samples = parseMetrics(await app.wechatAuthMetrics.registry.metrics())
  const count = (code: string): number => valueOf(samples, 'wechat_auth_errors_total', { code })
  t.same([count('ECONNRESET'), count('ROUTE_NOT_FOUND'), count('FST_ERR_CTP_INVALID_JSON_BODY')], [1, 1, 0], 'each counted with the code answered')
})
