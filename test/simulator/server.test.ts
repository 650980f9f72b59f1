// The HTTP side, whatever the endpoint: body caps, bad requests, held answers, handlers that throw.
import { Readable } from 'node:stream'
import { request } from 'undici'
import { test } from 'tap'
import { fail, listen, type Handler } from '../../simulator/server.js'
import { startSim, APPID, SECRET } from '../helper.js'
import { call, get, q, raw, stableToken } from './fixtures/client.js'

test('close drops a delayed answer instead of waiting for it', async (t) => {
  const sim = await startSim(t, { stableTokenDelayMs: 60_000 })
  const pending = stableToken(sim)
  while (sim.calls.length === 0) await new Promise((resolve) => setImmediate(resolve))
  await sim.close()
  await t.rejects(pending)
})

test('oversize, aborted and malformed requests get an answer and never stop the simulator', async (t) => {
  const sim = await startSim(t)
  const big = Buffer.alloc(64 * 1024 + 1, 'a')
  const declared = await call(`${sim.url}/cgi-bin/stable_token`, { body: big })
  t.equal(declared.status, 413)
  t.equal(declared.body.errcode, 45002)
  t.same(sim.calls.at(-1), { path: '/cgi-bin/stable_token', code: null, errcode: 45002 })
  t.equal((await call(`${sim.url}/cgi-bin/stable_token`, { body: Buffer.alloc(64 * 1024, ' ') })).body.errcode, 47001, '64 KiB is still read')

  const chunks = Readable.from(Array.from({ length: 8 }, () => Buffer.alloc(16 * 1024, 'a')))
  const chunked = await request(`${sim.url}/dev/encrypt?user=alice`, { method: 'POST', body: chunks })
  t.equal(chunked.statusCode, 413, 'a chunked body without a length is cut at the limit too')
  t.match(await chunked.body.json(), { errcode: 45002 })

  t.match(await raw(sim, 'GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1.1 404/, 'an unparseable target')
  await raw(sim, 'POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"grant', { abort: true })
  t.match(await stableToken(sim), { access_token: String }, 'still serving')
})

test('a handler that throws costs one 500 answer, not the process', async (t) => {
  const sim = await startSim(t, { now: () => { throw new Error('broken clock') } })
  const res = await call(`${sim.url}/cgi-bin/stable_token`, { body: { grant_type: 'client_credential', appid: APPID, secret: SECRET } })
  t.equal(res.status, 500)
  t.equal(res.body.errcode, -1)
  t.match((await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'alice' })}`)).body, { openid: sim.openidOf('alice') })
})

test('listen routes by method and path, records each call and holds an answer for its delayMs', async (t) => {
  const routes = new Map<string, Handler>([
    ['GET /echo', (query) => ({ errcode: 0, body: { got: query.get('x') }, code: query.get('x'), appid: 'wx1' })],
    ['POST /late', (_q, body) => ({ errcode: 7, body: body.toString(), delayMs: 50 })]
  ])
  const server = await listen(routes, {})
  t.teardown(server.close)
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'loopback and a free port by default')
  const echo = await request(`${server.url}/echo?x=1`)
  t.equal(echo.headers['content-type'], 'text/plain')
  t.same(await echo.body.json(), { got: '1' })
  const started = Date.now()
  const late = await request(`${server.url}/late`, { method: 'POST', body: 'hello' })
  t.ok(Date.now() - started >= 45, 'held back')
  t.equal(await late.body.text(), 'hello', 'a string body is sent as it is')
  const wrongMethod = await request(`${server.url}/echo`, { method: 'POST', body: '' })
  t.equal(wrongMethod.statusCode, 404)
  t.same(await wrongMethod.body.json(), { errcode: 404, errmsg: 'not found' })
  t.same(server.calls, [{ path: '/echo', code: '1', errcode: 0, appid: 'wx1' }, { path: '/late', code: null, errcode: 7 }], 'not the 404')
})

test('listen on a taken port fails with EADDRINUSE', async (t) => {
  const first = await listen(new Map(), {})
  t.teardown(first.close)
  await t.rejects(listen(new Map(), { port: Number(new URL(first.url).port) }), { code: 'EADDRINUSE' })
})

test('fail answers the way WeChat refuses: the errcode, and an errmsg that ends with a request id', async (t) => {
  t.match(fail(40029, 'invalid code', { appid: 'wx1', status: 400 }), {
    errcode: 40029, appid: 'wx1', status: 400, body: { errcode: 40029, errmsg: /^invalid code, rid: [0-9a-f]{12}$/ }
  })
  t.not((fail(-1, 'x').body as { errmsg: string }).errmsg, (fail(-1, 'x').body as { errmsg: string }).errmsg, 'a new id each time')
})
