// One log line per request (http/request-log.ts): written once answered, with the request, its
// status and its time; the incoming line at debug only; a probe answered 2xx at debug; a 4xx's error
// without a stack. Through the standalone server's own options, with HTTP in front.
import Fastify from 'fastify'
import { test, type Test } from 'tap'
import { request } from 'undici'
import { PROBE_CONFIG } from '../../http/request-log.js'
import { serverOptions } from '../../http/server-options.js'
import { notFoundHandler } from '../../http/error-handler.js'
import metricsRoutes from '../../routes/metrics.js'

interface Line { level: number, msg: string, reqId?: string, req?: Record<string, unknown>, res?: { statusCode: number }, responseTime?: number, err?: { stack?: string }, code?: string }

/** A server at `level` with a route, a probe that answers `probeStatus`, and a route whose onResponse hook fails; its lines. */
async function server (t: Test, level: 'info' | 'debug' | 'warn'): Promise<{ base: string, lines: Line[], probeStatus: { value: number } }> {
  const lines: Line[] = []
  const probeStatus = { value: 200 }
  const app = Fastify(serverOptions({ LOG_LEVEL: level, TRUST_PROXY: 'false' }, { logStream: { write: (l) => { lines.push(JSON.parse(l) as Line) } } }))
  t.teardown(async () => await app.close())
  app.setNotFoundHandler(notFoundHandler)
  app.get('/work', async () => ({ done: true }))
  app.get('/probe', { config: PROBE_CONFIG }, async (_request, reply) => await reply.code(probeStatus.value).send({ status: probeStatus.value }))
  await app.register(metricsRoutes, { source: { metrics: async () => '# a scrape\n', contentType: 'text/plain' } })
  app.get('/bug', async () => { throw new TypeError('x is undefined') })
  app.get('/hook-fails', { onResponse: async () => { throw new Error('an onResponse hook failed') } }, async () => ({ done: true }))
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  lines.length = 0 // the listening line
  return { base, lines, probeStatus }
}

const get = async (url: string): Promise<void> => { await (await request(url)).body.dump() }
const logged = async (lines: Line[], n: number): Promise<Line[]> => {
  for (let i = 0; i < 50 && lines.length < n; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  return lines.splice(0)
}

test('at info, a request is one line once answered: the request, its status, its time', async (t) => {
  const { base, lines } = await server(t, 'info')
  await get(`${base}/work?role=admin&page=2`)
  const [line, ...more] = await logged(lines, 1)
  t.same(more, [], 'one line')
  // A parameter no route of the gateway takes has its value redacted (http/logged-url.ts).
  t.match(line, { level: 30, msg: 'request completed', reqId: String, req: { method: 'GET', url: '/work?role=admin&page=[redacted]', remoteAddress: '127.0.0.1' }, res: { statusCode: 200 }, responseTime: Number })
})

test('at warn, no line for a request answered; one for a failure after the answer', async (t) => {
  const { base, lines } = await server(t, 'warn')
  await get(`${base}/work`)
  await get(`${base}/probe`)
  await get(`${base}/hook-fails`)
  t.same((await logged(lines, 1)).map((l) => [l.level, l.msg]), [[50, 'request errored']])
})

test('at debug, the incoming line too: a request that never completes is seen', async (t) => {
  const { base, lines } = await server(t, 'debug')
  await get(`${base}/work`)
  const got = await logged(lines, 2)
  t.same(got.map((l) => [l.level, l.msg]), [[20, 'incoming request'], [30, 'request completed']])
  t.equal(got[0]?.reqId, got[1]?.reqId, 'the same request')
})

test('a probe or a metrics scrape answered 2xx is logged at debug; a probe that fails at info', async (t) => {
  const quiet = await server(t, 'info')
  await get(`${quiet.base}/probe`)
  await get(`${quiet.base}/metrics`)
  quiet.probeStatus.value = 503
  await get(`${quiet.base}/probe`)
  const got = await logged(quiet.lines, 1)
  t.same(got.map((l) => [l.level, l.res?.statusCode]), [[30, 503]], 'only the failed probe, at info')
  const verbose = await server(t, 'debug')
  await get(`${verbose.base}/probe`)
  t.same((await logged(verbose.lines, 2)).map((l) => [l.level, l.msg]), [[20, 'incoming request'], [20, 'request completed']])
})

test('a 404 is logged without a stack, a bug with one; a failure after the answer is an error line', async (t) => {
  const { base, lines } = await server(t, 'info')
  await get(`${base}/nowhere?code=x`)
  const missing = await logged(lines, 2)
  t.same(missing.map((l) => [l.level, l.res?.statusCode]), [[30, 404], [30, 404]])
  t.notOk(JSON.stringify(missing).includes('stack'), 'no stack in a 404\'s lines')
  t.match(missing[0], { code: 'ROUTE_NOT_FOUND' })
  await get(`${base}/bug`)
  const bug = await logged(lines, 2)
  t.match(bug, [{ level: 50, msg: 'x is undefined', res: { statusCode: 500 }, err: { stack: /TypeError/ } }, { level: 30, msg: 'request completed', res: { statusCode: 500 } }])
  await get(`${base}/hook-fails`)
  const [failed] = await logged(lines, 1)
  t.match(failed, { level: 50, msg: 'request errored', req: { url: '/hook-fails' }, err: { message: 'an onResponse hook failed' } })
})
