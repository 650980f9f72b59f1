import { request } from 'undici'
import { test } from 'tap'
import { startSim, APPID, SECRET } from '../helper.js'

async function get (url: string): Promise<{ status: number, type: string | undefined, body: Record<string, unknown> | string }> {
  const res = await request(url)
  const text = await res.body.text()
  let body: Record<string, unknown> | string = text
  try { body = JSON.parse(text) } catch {}
  return { status: res.statusCode, type: res.headers['content-type'] as string | undefined, body }
}

const q = (over: Record<string, string>): string =>
  new URLSearchParams({ appid: APPID, secret: SECRET, js_code: 'alice', grant_type: 'authorization_code', ...over }).toString()

test('jscode2session answers like WeChat: text/plain JSON, no errcode on success', async (t) => {
  const sim = await startSim(t)
  const ok = await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'alice.x' })}`)
  t.equal(ok.status, 200)
  t.equal(ok.type, 'text/plain')
  t.match(ok.body, { openid: sim.openidOf('alice'), unionid: sim.unionidOf('alice'), session_key: /^[A-Za-z0-9+/]{22}==$/ })
  t.notOk(typeof ok.body === 'object' && 'errcode' in ok.body)
  t.equal(sim.openidOf('alice').length, 28)
})

test('the same user always gets the same openid; each code works once', async (t) => {
  const sim = await startSim(t)
  const a = await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'bob.1' })}`)
  const b = await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'bob.2' })}`)
  const again = await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'bob.1' })}`)
  t.equal((a.body as Record<string, unknown>).openid, (b.body as Record<string, unknown>).openid)
  t.not((a.body as Record<string, unknown>).session_key, (b.body as Record<string, unknown>).session_key, 'a new session_key per login')
  t.match(again.body, { errcode: 40163 })
})

test('special users and bad credentials produce WeChat errors', async (t) => {
  const sim = await startSim(t)
  const cases: Array<[Record<string, string>, number]> = [
    [{ js_code: 'invalid' }, 40029],
    [{ js_code: 'risky.1' }, 40226],
    [{ js_code: 'limit.1' }, 45011],
    [{ js_code: 'busy.1' }, -1],
    [{ appid: 'wx1111111111111111' }, 40013],
    [{ secret: 'nope' }, 40125],
    [{ grant_type: 'password' }, 40002],
    [{ js_code: '' }, 41008]
  ]
  for (const [over, errcode] of cases) {
    t.match((await get(`${sim.url}/sns/jscode2session?${q(over)}`)).body, { errcode }, JSON.stringify(over))
  }
  t.notOk('errcode' in ((await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'busy.1' })}`)).body as object), 'busy succeeds on the second try')
  t.equal((await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'garbage' })}`)).body, '<html><body>502 Bad Gateway</body></html>')
  t.equal((await get(`${sim.url}/nope`)).status, 404)
})
