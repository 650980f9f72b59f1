// wxacode.getUnlimited (lib/wechat-wxacode.ts) against a real HTTP server that answers as WeChat may
// fail: every failure is one of WeChat's coded errors, never a bare socket error (a 500 for the page).
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'tap'
import { Agent } from 'undici'
import { createWxacode } from '../../lib/wechat-wxacode.js'

type Answer = (res: ServerResponse) => void

async function wechat (t: { teardown: (fn: () => unknown) => void }, answer: Answer): Promise<string> {
  const server = createServer((req, res) => { req.resume(); answer(res) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
const code = { scene: 'AAAAAAAAAAAAAAAAAAAAAA', page: '', envVersion: 'release' as const }

test('an image, and each way the call fails, coded', async (t) => {
  const cases: Array<[string, Answer, string | null]> = [
    ['an image', (res) => { res.writeHead(200, { 'content-type': 'image/png' }).end(PNG) }, null],
    ['the connection reset half-way through the image', (res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': '5000' })
      res.write(PNG)
      setTimeout(() => { res.socket?.destroy() }, 20)
    }, 'WX_UNAVAILABLE'],
    ['the image stalled half-way past the deadline', (res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': '5000' })
      res.write(PNG)
    }, 'WX_TIMEOUT'],
    ['no answer before the deadline', () => {}, 'WX_TIMEOUT'],
    ['an image over 2 MiB', (res) => { res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(2 * 1024 * 1024 + 1)) }, 'WX_BAD_RESPONSE'],
    ['errcode 41030', (res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"errcode":41030,"errmsg":"invalid page"}') }, 'WX_QR_PAGE_REJECTED'],
    ['a 502 of a proxy', (res) => { res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>') }, 'WX_UNAVAILABLE']
  ]
  for (const [name, answer, expected] of cases) {
    const dispatcher = new Agent()
    t.teardown(async () => { await dispatcher.destroy() })
    const getUnlimited = createWxacode({ apiBase: await wechat(t, answer), dispatcher, timeoutMs: 300, log: { warn: () => {} } })
    const started = Date.now()
    const outcome = await getUnlimited('token', code).then((image) => image.contentType, (err: { code?: string }) => err.code)
    t.equal(outcome, expected ?? 'image/png', name)
    t.ok(Date.now() - started < 2_000, `${name}: within the deadline, not a hang`)
  }
})
