import { execFile } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { test, type Test } from 'tap'
import { createWeChatClient } from '../../lib/wechat-client.js'
import { startSim, APPID, SECRET } from '../helper.js'

const execFileAsync = promisify(execFile)

interface Line { level: string, obj: Record<string, unknown>, msg: string }
function logger (): { lines: Line[], log: { warn: (o: object, m: string) => void, error: (o: object, m: string) => void } } {
  const lines: Line[] = []
  const rec = (level: string) => (obj: object, msg: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg }) }
  return { lines, log: { warn: rec('warn'), error: rec('error') } }
}

async function clientFor (t: Test, apiBase: string, over: Partial<Parameters<typeof createWeChatClient>[0]> = {}) {
  const { lines, log } = logger()
  const client = createWeChatClient({ appid: APPID, secret: SECRET, apiBase, timeoutMs: 2000, log: log as never, ...over })
  t.teardown(async () => await client.close())
  return { client, lines }
}

test('code2Session returns openid, unionid and session_key from a text/plain answer', async (t) => {
  const sim = await startSim(t)
  const { client } = await clientFor(t, sim.url)
  const r = await client.code2Session('alice.1')
  t.equal(r.openid, sim.openidOf('alice'))
  t.equal(r.unionid, sim.unionidOf('alice'))
  t.equal(r.sessionKey, sim.sessionKeyOf('alice'))
  const solo = await client.code2Session('nounion-bob')
  t.notOk('unionid' in solo, 'no unionid when WeChat sends none')
})

test('every WeChat errcode maps to a coded error', async (t) => {
  const sim = await startSim(t)
  const { client, lines } = await clientFor(t, sim.url)
  await t.rejects(client.code2Session('invalid.1'), { code: 'WX_CODE_INVALID', statusCode: 401 })
  await t.rejects(client.code2Session('risky.1'), { code: 'WX_USER_BLOCKED', statusCode: 403 })
  await t.rejects(client.code2Session('limit.1'), { code: 'WX_RATE_LIMITED', statusCode: 429 })
  await client.code2Session('alice.2')
  await t.rejects(client.code2Session('alice.2'), { code: 'WX_CODE_USED', statusCode: 401 })
  t.ok(lines.every((l) => l.level === 'warn'), 'user errors are warnings')

  const badSecret = await clientFor(t, sim.url, { secret: 'wrong-secret-0123456789' })
  await t.rejects(badSecret.client.code2Session('alice.3'), { code: 'WX_CREDENTIALS_REJECTED', statusCode: 502 })
  t.equal(badSecret.lines[0]?.level, 'error', 'credential problems are errors')
  const badAppid = await clientFor(t, sim.url, { appid: 'wxffffffffffffffff' })
  await t.rejects(badAppid.client.code2Session('alice.4'), { code: 'WX_CREDENTIALS_REJECTED' })
})

test('a host\'s dispatcher from Node\'s own undici (6 on Node 20) works: answers, deadlines and body caps', async (t) => {
  const sim = await startSim(t, { slowMs: 5_000 })
  const big = createServer((_req, res) => res.end(`{"openid":"o","session_key":"k","pad":"${'x'.repeat(70_000)}"}`))
  await new Promise<void>((resolve) => big.listen(0, '127.0.0.1', resolve))
  t.teardown(() => big.close())
  const fixture = fileURLToPath(new URL('../fixtures/node-dispatcher.ts', import.meta.url))
  const run = async (apiBase: string, code: string, timeoutMs: number): Promise<Record<string, unknown>> => {
    const { stdout } = await execFileAsync(process.execPath, [...process.execArgv, fixture, apiBase, code, String(timeoutMs)],
      { env: { ...process.env, APPID, SECRET }, timeout: 30_000 })
    return JSON.parse(stdout) as Record<string, unknown>
  }
  const ok = await run(sim.url, 'alice.1', 2000)
  t.equal(ok.kind, 'Agent', `Node's own dispatcher (undici ${String(ok.undici)})`)
  t.same(ok.ok, { openid: sim.openidOf('alice'), unionid: sim.unionidOf('alice'), sessionKey: sim.sessionKeyOf('alice') })
  const slow = await run(sim.url, 'slow.1', 300)
  t.same(slow.error, 'WX_TIMEOUT')
  // 300 ms against WeChat's 5 s: well before the answer, with a loaded machine's margin.
  t.ok(Number(slow.ms) < 2_500, `the deadline aborts it (in ${String(slow.ms)} ms)`)
  t.same((await run(`http://127.0.0.1:${(big.address() as AddressInfo).port}`, 'x', 2000)).error, 'WX_BAD_RESPONSE')
})

test('bodies that are not what WeChat sends end in WX_BAD_RESPONSE', async (t) => {
  const sim = await startSim(t)
  const { client } = await clientFor(t, sim.url)
  await t.rejects(client.code2Session('garbage.1'), { code: 'WX_BAD_RESPONSE', statusCode: 502 })
  const bodies = ['[]', 'null', `{"openid":"o","session_key":"k","pad":"${'x'.repeat(70_000)}"}`, '{"openid":"o"}', '{"errcode":99999,"errmsg":"new error"}', '{"errcode":0,"openid":"","session_key":"k"}',
    '{"openid":"o\\u0001x","session_key":"a2V5"}', '{"openid":"o1","session_key":"not base64!"}',
    '{"openid":"o1","session_key":"a2V5","unionid":"u u"}',
    // Base64, but not 16 bytes: kept, every decrypt of the session would fail as if the client's data were wrong.
    '{"openid":"o1","session_key":"a2V5"}', `{"openid":"o1","session_key":"${'A'.repeat(32)}"}`, '{"openid":"o1","session_key":"c2Vzc2lvbi1rZXktMTIzNA="}']
  for (const body of bodies) {
    const srv = createServer((_req, res) => res.end(body))
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
    const c = await clientFor(t, `http://127.0.0.1:${(srv.address() as AddressInfo).port}`)
    await t.rejects(c.client.code2Session('x'), { code: 'WX_BAD_RESPONSE' }, body.slice(0, 60))
    srv.close()
  }
})

test('codes are URL-encoded; nothing secret reaches errors or logs', async (t) => {
  const sim = await startSim(t)
  const echo = createServer((req, res) => {
    const q = new URL(req.url ?? '', 'http://x').searchParams
    res.end(JSON.stringify({ errcode: 40029, errmsg: `invalid code ${q.get('js_code') ?? ''} for ${q.get('secret') ?? ''}` }))
  })
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve))
  t.teardown(() => echo.close())
  const weird = 'alice."\'%&secret=x#y+z'
  const { client } = await clientFor(t, sim.url)
  await client.code2Session(weird)
  t.equal(sim.calls.at(-1)?.code, weird, 'WeChat received the exact code')

  const { client: echoing, lines } = await clientFor(t, `http://127.0.0.1:${(echo.address() as AddressInfo).port}`)
  const err = await echoing.code2Session('SECRETCODE123').catch((e: Error) => e)
  const text = JSON.stringify(lines) + String((err as Error).message) + JSON.stringify(err)
  t.notMatch(text, /SECRETCODE123/, 'the code is scrubbed from logged errmsg')
  t.notMatch(text, new RegExp(SECRET), 'the secret is scrubbed')
  t.match(lines[0]?.obj, { errcode: 40029, errmsg: /\[redacted\].*\[secret\]/ })
})

test('stable_token, session_key checks and phone numbers refuse answers that are not WeChat\'s', async (t) => {
  const cases: Array<[string, (c: ReturnType<typeof createWeChatClient>) => Promise<unknown>, string[]]> = [
    ['stableToken', async (c) => await c.stableToken(), [
      '{"access_token":"short","expires_in":7200}', '{"access_token":"' + 'a'.repeat(40) + '","expires_in":"7200"}',
      '{"access_token":"' + 'a'.repeat(40) + '","expires_in":0}', '{"access_token":"' + 'a'.repeat(40) + '","expires_in":30}', '{"expires_in":7200}']],
    ['resetSessionKey', async (c) => await c.resetSessionKey('token-0123456789abcdef', 'o1', 'a2V5'), [
      '{"errcode":0,"openid":"o2","session_key":"a2V5"}', '{"errcode":0,"openid":"o1","session_key":"not base64!"}', '{"errcode":0}',
      '{"errcode":0,"openid":"o1","session_key":"a2V5"}']],
    ['getPhoneNumber', async (c) => await c.getPhoneNumber('token-0123456789abcdef', 'code'), [
      '{"errcode":0}', '{"errcode":0,"phone_info":{"phoneNumber":"1<script>","purePhoneNumber":"1","countryCode":"86","watermark":{"appid":"' + APPID + '"}}}',
      '{"errcode":0,"phone_info":{"phoneNumber":"13800000000","purePhoneNumber":"13800000000","countryCode":"86","watermark":{"appid":"wxffffffffffffffff"}}}',
      '{"errcode":0,"phone_info":{"phoneNumber":"13800000000","purePhoneNumber":"13800000000","countryCode":86,"watermark":{"appid":"' + APPID + '"}}}']]
  ]
  for (const [name, call, bodies] of cases) {
    for (const body of bodies) {
      const srv = createServer((_req, res) => res.end(body))
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
      const c = await clientFor(t, `http://127.0.0.1:${(srv.address() as AddressInfo).port}`)
      await t.rejects(call(c.client), { code: 'WX_BAD_RESPONSE' }, `${name}: ${body.slice(0, 70)}`)
      srv.close()
    }
  }
})

test('errcodes of the access_token calls', async (t) => {
  const answers: Record<string, string> = {}
  const srv = createServer((req, res) => res.end(answers[new URL(req.url ?? '/', 'http://x').pathname] ?? '{}'))
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => srv.close())
  const { client, lines } = await clientFor(t, `http://127.0.0.1:${(srv.address() as AddressInfo).port}`)
  answers['/cgi-bin/stable_token'] = '{"errcode":40001,"errmsg":"invalid credential"}'
  await t.rejects(client.stableToken(), { code: 'WX_CREDENTIALS_REJECTED' }, 'for stable_token 40001 is a wrong secret')
  t.equal(lines.at(-1)?.level, 'error')
  for (const errcode of [40001, 40014, 42001]) {
    answers['/wxa/checksession'] = `{"errcode":${errcode},"errmsg":"x"}`
    await t.rejects(client.checkSessionKey('token-0123456789abcdef', 'o1', 'a2V5'), { code: 'WX_ACCESS_TOKEN_REJECTED', statusCode: 502 }, String(errcode))
  }
  answers['/wxa/business/getuserphonenumber'] = '{"errcode":40163,"errmsg":"code been used, token-0123456789abcdef"}'
  await t.rejects(client.getPhoneNumber('token-0123456789abcdef', 'code'), { code: 'WX_PHONE_CODE_INVALID', statusCode: 400 })
  t.notMatch(JSON.stringify(lines), /token-0123456789abcdef/, 'an access_token echoed by WeChat is scrubbed')
})
