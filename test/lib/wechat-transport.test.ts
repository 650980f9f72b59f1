import { createServer, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test, type Test } from 'tap'
import { Agent } from 'undici'
import { WxSessionKeyStaleError } from '../../lib/errors.js'
import { createWeChatTransport, type WeChatCall, type WeChatTransportOptions } from '../../lib/wechat-transport.js'
import { freePort, startSim, APPID, SECRET } from '../helper.js'

interface Line { level: string, obj: Record<string, unknown>, msg: string }

function transportFor (t: Test, apiBase: string, over: Partial<WeChatTransportOptions> = {}) {
  const lines: Line[] = []
  const rec = (level: string) => (obj: object, msg?: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? '' }) }
  const transport = createWeChatTransport({ secret: SECRET, apiBase, timeoutMs: 2000, log: { warn: rec('warn'), error: rec('error') }, ...over })
  t.teardown(async () => await transport.close())
  return { transport, lines }
}

/** An HTTP server standing in for WeChat, closed at teardown; resolves with its base URL. */
async function serve (t: Test, listener: RequestListener): Promise<string> {
  const srv = createServer(listener)
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => srv.close())
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`
}

/** A jscode2session call, as the client makes it. */
const login = (code: string): WeChatCall =>
  ({ path: '/sns/jscode2session', query: { appid: APPID, secret: SECRET, js_code: code, grant_type: 'authorization_code' }, secrets: [code] })

test('-1 is retried once inside the deadline; the retry succeeds', async (t) => {
  const sim = await startSim(t)
  const { transport } = transportFor(t, sim.url)
  const body = await transport.call(login('busy.1'))
  t.equal(body.openid, sim.openidOf('busy'))
  t.same(sim.calls.map((c) => c.errcode), [-1, 0], 'two upstream calls: -1 then success')
})

test('a -1 that persists, or a server that is down, ends in WX_UNAVAILABLE after one retry', async (t) => {
  let hits = 0
  const busy = await serve(t, (_req, res) => { hits++; res.end('{"errcode":-1,"errmsg":"system error"}') })
  const { transport, lines } = transportFor(t, busy)
  await t.rejects(transport.call(login('x')), { code: 'WX_UNAVAILABLE', statusCode: 503 })
  t.equal(hits, 2, 'retried exactly once')
  t.match(lines.at(-1)?.obj, { errcode: -1, retried: true })

  const down = transportFor(t, `http://127.0.0.1:${await freePort()}`)
  await t.rejects(down.transport.call(login('x')), { code: 'WX_UNAVAILABLE' })
  t.match(down.lines.at(-1)?.obj, { network: 'ECONNREFUSED', retried: true })
})

test('HTTP 5xx counts as transient; a 5xx then success works', async (t) => {
  let hits = 0
  const flaky = await serve(t, (_req, res) => {
    hits++
    if (hits === 1) { res.statusCode = 502; res.end('bad gateway'); return }
    res.end('{"openid":"o1","session_key":"k1"}')
  })
  const { transport } = transportFor(t, `${flaky}/`)
  t.same(await transport.call(login('x')), { openid: 'o1', session_key: 'k1' })
})

test('a slow WeChat ends in WX_TIMEOUT at the deadline, without waiting for it', async (t) => {
  const sim = await startSim(t, { slowMs: 10_000 })
  const { transport } = transportFor(t, sim.url, { timeoutMs: 300 })
  const started = Date.now()
  await t.rejects(transport.call(login('slow.1')), { code: 'WX_TIMEOUT', statusCode: 504 })
  t.ok(Date.now() - started < 1500, 'answered near the deadline')
})

test('a call whose deadline passes while it waits for a pooled connection fails at its deadline and is never sent', async (t) => {
  const paths: string[] = []
  const apiBase = await serve(t, (req, res) => {
    paths.push(req.url ?? '')
    setTimeout(() => res.end('{"openid":"o1","session_key":"a2V5"}'), 800)
  })
  const dispatcher = new Agent({ connections: 1 })
  t.teardown(async () => await dispatcher.destroy())
  const { transport: patient } = transportFor(t, apiBase, { dispatcher, timeoutMs: 3000 })
  const { transport: hasty } = transportFor(t, apiBase, { dispatcher, timeoutMs: 300 })
  const first = patient.call(login('first'))
  await new Promise((resolve) => setTimeout(resolve, 50))
  const started = Date.now()
  await t.rejects(hasty.call(login('second')), { code: 'WX_TIMEOUT' })
  t.ok(Date.now() - started < 700, 'failed at its own deadline, not when the connection came free')
  t.same(await first, { openid: 'o1', session_key: 'a2V5' })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(paths.length, 1, 'the expired call was dropped, not sent late')
})

test('an API base with a path keeps it; a transport that was closed fails fast with WX_UNAVAILABLE', async (t) => {
  const paths: string[] = []
  const apiBase = await serve(t, (req, res) => { paths.push(req.url ?? ''); res.end('{"openid":"o1","session_key":"a2V5"}') })
  const { transport } = transportFor(t, `${apiBase}/wechat-proxy/`)
  await transport.call(login('c1'))
  t.match(paths[0], /^\/wechat-proxy\/sns\/jscode2session\?appid=/)
  await transport.close()
  await t.rejects(transport.call(login('c2')), { code: 'WX_UNAVAILABLE' })
  t.equal(paths.length, 1)
})

test('a body makes it a POST of JSON; the query is URL-encoded; no body, a GET', async (t) => {
  const seen: Array<{ method?: string, url?: string, type?: string, body: string }> = []
  const apiBase = await serve(t, (req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, type: req.headers['content-type'], body })
      res.end('{"errcode":0}')
    })
  })
  const { transport } = transportFor(t, apiBase)
  t.same(await transport.call({ path: '/p', query: { a: 'x&y=z' }, body: { n: 1 }, secrets: [] }), { errcode: 0 })
  await transport.call({ path: '/g', query: {}, secrets: [] })
  t.same(seen, [
    { method: 'POST', url: '/p?a=x%26y%3Dz', type: 'application/json', body: '{"n":1}' },
    { method: 'GET', url: '/g', type: undefined, body: '' }
  ])
})

test('overrides make an errcode an answer or another error; without one it maps to its coded error', async (t) => {
  const apiBase = await serve(t, (_req, res) => res.end('{"errcode":87009,"errmsg":"invalid signature"}'))
  const { transport, lines } = transportFor(t, apiBase)
  const call: WeChatCall = { path: '/wxa/checksession', query: {}, secrets: [] }
  t.same(await transport.call({ ...call, overrides: { 87009: () => 'return' } }), { errcode: 87009, errmsg: 'invalid signature' })
  t.same(lines, [], 'an errcode that is an answer is not logged')
  await t.rejects(transport.call({ ...call, overrides: { 87009: () => new WxSessionKeyStaleError() } }), { code: 'WX_SESSION_KEY_STALE' })
  await t.rejects(transport.call(call), { code: 'WX_BAD_RESPONSE', message: /errcode 87009/ })
  t.same(lines.map((l) => [l.level, l.obj.errcode]), [['warn', 87009], ['warn', 87009]])
})

test('a caller\'s deadline earlier than timeoutMs wins; one too close to retry in is refused unsent', async (t) => {
  let hits = 0
  const apiBase = await serve(t, (_req, res) => { hits++; setTimeout(() => res.end('{"errcode":0}'), 800) })
  const { transport } = transportFor(t, apiBase, { timeoutMs: 5000 })
  const started = Date.now()
  await t.rejects(transport.call({ path: '/x', query: {}, secrets: [], deadline: Date.now() + 300 }), { code: 'WX_TIMEOUT' })
  t.ok(Date.now() - started < 700, 'at the caller\'s deadline')
  t.equal(hits, 1)
  await t.rejects(transport.call({ path: '/x', query: {}, secrets: [], deadline: Date.now() + 50 }), { code: 'WX_TIMEOUT' })
  t.equal(hits, 1, 'not sent')
})

test('close destroys the pool the transport made and leaves a shared one open', async (t) => {
  const apiBase = await serve(t, (_req, res) => res.end('{"errcode":0}'))
  const dispatcher = new Agent()
  t.teardown(async () => await dispatcher.destroy())
  const { transport: first } = transportFor(t, apiBase, { dispatcher })
  const { transport: second } = transportFor(t, apiBase, { dispatcher })
  await first.close()
  t.same(await second.call({ path: '/x', query: {}, secrets: [] }), { errcode: 0 }, 'the shared pool still carries calls')
  t.equal(dispatcher.destroyed, false)
})

test('a transient failure too close to the deadline for a retry fails at once, logged as not retried', async (t) => {
  let hits = 0
  const apiBase = await serve(t, (_req, res) => { hits++; res.end('{"errcode":-1,"errmsg":"system error"}') })
  const { transport, lines } = transportFor(t, apiBase)
  await t.rejects(transport.call({ ...login('x'), deadline: Date.now() + 140 }), { code: 'WX_UNAVAILABLE' })
  t.equal(hits, 1)
  t.match(lines, [{ level: 'warn', obj: { errcode: -1, retried: false } }])
})

test('an answer that is not a JSON object, or over 64 KiB, is WX_BAD_RESPONSE and not retried', async (t) => {
  const bodies = ['<html>502</html>', '[]', 'null', `{"pad":"${'x'.repeat(70_000)}"}`]
  let hits = 0
  const apiBase = await serve(t, (_req, res) => { res.end(bodies[hits++]) })
  const { transport } = transportFor(t, apiBase)
  for (const body of bodies) await t.rejects(transport.call(login('x')), { code: 'WX_BAD_RESPONSE' }, body.slice(0, 20))
  t.equal(hits, bodies.length)
})

test('what WeChat echoes of what we sent is scrubbed raw and percent-encoded, as the query sent it or as encodeURIComponent writes it', async (t) => {
  const code = 'raw+Sec/ret=Code&1 é'
  const secret = 'app+Sec/ret=1&2'
  const lowerHex = (s: string): string => s.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase())
  // WeChat's errmsg as a server may write it, one form a call: the query as received, decoded, re-encoded, lower-case hex.
  const echoes: Array<(query: string) => string> = [
    (query) => query,
    (query) => `${new URLSearchParams(query).get('js_code') ?? ''} for ${new URLSearchParams(query).get('secret') ?? ''}`,
    () => `${encodeURIComponent(code)} for ${encodeURIComponent(secret)}`,
    (query) => lowerHex(query),
    () => `${lowerHex(encodeURIComponent(code))} for ${lowerHex(encodeURIComponent(secret))}`
  ]
  let calls = 0
  const apiBase = await serve(t, (req, res) => {
    const echo = echoes[calls++] as (query: string) => string
    res.end(JSON.stringify({ errcode: 40029, errmsg: `invalid code: ${echo((req.url ?? '').split('?')[1] ?? '')}` }))
  })
  const { transport, lines } = transportFor(t, apiBase, { secret })
  const forms = [code, secret].flatMap((v) => [v, encodeURIComponent(v), new URLSearchParams({ v }).toString().slice(2)])
  t.ok(forms.some((f) => f.includes('%2B')) && forms.some((f) => f.includes('+Sec')) && forms.some((f) => f.includes('%20')), 'the forms differ')
  for (let i = 0; i < echoes.length; i++) await t.rejects(transport.call({ ...login(code), query: { ...login(code).query, secret } }), { code: 'WX_CODE_INVALID' })
  t.equal(lines.length, echoes.length)
  for (const line of lines) {
    const logged = String(line.obj.errmsg)
    t.ok(logged.startsWith('invalid code: ') && logged.includes('[redacted]') && logged.includes('[secret]'), logged)
    for (const form of forms) t.notOk(logged.toLowerCase().includes(form.toLowerCase()), `not in the log, in any hex case: ${form}`)
    t.notOk(/Sec|ret%3D|Code&|Code%26/.test(logged), 'no fragment either')
  }
})
