// The simulator's official-account web authorization as a browser and a server see it: the authorize
// page, sns/oauth2/access_token and sns/userinfo, their errcodes, one-time codes and user tokens.
import { test } from 'tap'
import { request } from 'undici'
import { DEV_OA_APPID, DEV_OA_SECRET, startSimulator } from '../../simulator/index.js'
import { startSim } from '../helper.js'
import { call, get, SECOND, T0, type Sim } from './fixtures/client.js'

const PAGE = 'https://h5.example.com/app/?tab=1'

async function authorize (sim: Sim, over: Record<string, string> = {}): Promise<{ status: number, location?: URL, body: string }> {
  const query = new URLSearchParams({ appid: sim.officialAccount.appid, redirect_uri: PAGE, response_type: 'code', scope: 'snsapi_base', state: 'st', user: 'alice', ...over })
  for (const [k, v] of Object.entries(over)) if (v === '') query.delete(k)
  const res = await request(`${sim.url}/connect/oauth2/authorize?${query.toString()}`)
  const body = await res.body.text()
  return { status: res.statusCode, ...(res.headers.location !== undefined ? { location: new URL(String(res.headers.location)) } : {}), body }
}

async function codeOf (sim: Sim, user: string, scope = 'snsapi_base'): Promise<string> {
  return (await authorize(sim, { user, scope })).location?.searchParams.get('code') as string
}

const exchange = async (sim: Sim, code: string, over: Record<string, string> = {}) =>
  (await call(`${sim.url}/sns/oauth2/access_token?${new URLSearchParams({ appid: sim.officialAccount.appid, secret: sim.officialAccount.secret, code, grant_type: 'authorization_code', ...over }).toString()}`)).body
const userinfo = async (sim: Sim, token: string, openid: string) =>
  (await call(`${sim.url}/sns/userinfo?${new URLSearchParams({ access_token: token, openid, lang: 'zh_CN' }).toString()}`)).body

test('the authorize page sends the browser back with a code and the state; a user who declines gets the state only', async (t) => {
  const sim = await startSim(t)
  t.same(sim.officialAccount, { appid: DEV_OA_APPID, secret: DEV_OA_SECRET }, 'the default official account')
  const ok = await authorize(sim)
  t.equal(ok.status, 302)
  t.equal(`${ok.location?.origin ?? ''}${ok.location?.pathname ?? ''}`, 'https://h5.example.com/app/')
  t.match(Object.fromEntries(ok.location?.searchParams ?? []), { tab: '1', code: /^alice\.[\w-]+$/, state: 'st' }, 'added to the page\'s own query')
  const denied = await authorize(sim, { scope: 'snsapi_userinfo', deny: '1' })
  t.same(Object.fromEntries(denied.location?.searchParams ?? []), { tab: '1', state: 'st' })
  const page = await authorize(sim, { user: '' })
  t.equal(page.status, 200)
  t.match(page.body, /<form method="get">.*name="redirect_uri" value="https:\/\/h5\.example\.com\/app\/\?tab=1".*name="user"/s, 'without a user: a page to pick one')
  const errors: Array<[Record<string, string>, number]> = [
    [{ appid: 'wx1111111111111111' }, 10012], [{ appid: '' }, 10012], [{ redirect_uri: '' }, 10011], [{ redirect_uri: 'javascript:alert(1)' }, 10011],
    [{ response_type: 'token' }, 10010], [{ scope: 'snsapi_login' }, 10005]
  ]
  for (const [over, errcode] of errors) {
    const res = await authorize(sim, over)
    t.same([res.status, JSON.parse(res.body).errcode], [400, errcode], JSON.stringify(over))
  }
})

test('access_token: a code once, for its account, within 5 minutes; openid per account, unionid per person', async (t) => {
  let clock = T0
  const B = { appid: 'wx00000000000000b0', secret: 'second-official-account-secret' }
  const sim = await startSim(t, { now: () => clock, officialAccounts: [{ appid: DEV_OA_APPID, secret: DEV_OA_SECRET }, B] })
  const code = await codeOf(sim, 'alice')
  const grant = await exchange(sim, code)
  t.match(grant, { access_token: /^[\w-]{80,}$/, expires_in: 7200, refresh_token: String, openid: sim.openidOf('alice', DEV_OA_APPID), scope: 'snsapi_base', unionid: sim.unionidOf('alice') })
  t.not(grant.openid, sim.openidOf('alice'), 'not the mini program\'s openid')
  t.match(await exchange(sim, code), { errcode: 40163 }, 'once')
  t.match(sim.calls.at(-1), { path: '/sns/oauth2/access_token', code, errcode: 40163, appid: DEV_OA_APPID })

  const other = await codeOf(sim, 'alice')
  t.match(await exchange(sim, other, B), { errcode: 40029 }, 'another account\'s code')
  const forB = (await authorize(sim, { appid: B.appid })).location?.searchParams.get('code') as string
  t.match(await exchange(sim, forB, B), { openid: sim.openidOf('alice', B.appid), unionid: sim.unionidOf('alice') }, 'each account its own openid, one unionid')
  t.not(sim.openidOf('alice', B.appid), grant.openid)

  const stale = await codeOf(sim, 'bob')
  clock += 301 * SECOND
  t.match(await exchange(sim, stale), { errcode: 40029 }, 'expired after 5 minutes')
  const cases: Array<[Record<string, string>, number]> = [
    [{ grant_type: 'client_credential' }, 40002], [{ appid: 'wx1111111111111111' }, 40013], [{ secret: 'nope' }, 40125], [{ code: '' }, 41008], [{ code: 'alice.made-up' }, 40029]
  ]
  for (const [over, errcode] of cases) t.match(await exchange(sim, await codeOf(sim, 'carol'), over), { errcode }, JSON.stringify(over))
  t.match(await exchange(sim, await codeOf(sim, 'invalid')), { errcode: 40029 })
  t.match(await exchange(sim, await codeOf(sim, 'limit')), { errcode: 45011 })
  const busy = await codeOf(sim, 'busy')
  t.match(await exchange(sim, busy), { errcode: -1 })
  t.match(await exchange(sim, busy), { openid: sim.openidOf('busy', DEV_OA_APPID) }, 'busy: the second try works')
  t.notOk('unionid' in await exchange(sim, await codeOf(sim, 'nounion')), 'nounion: no unionid')
  const garbage = await get(`${sim.url}/sns/oauth2/access_token?${new URLSearchParams({ code: await codeOf(sim, 'garbage') }).toString()}`)
  t.equal(garbage.body, '<html><body>502 Bad Gateway</body></html>')
})

test('userinfo: with a snsapi_userinfo token, for its user, before it expires', async (t) => {
  let clock = T0
  const sim = await startSim(t, { now: () => clock, slowMs: 20 })
  const grant = await exchange(sim, await codeOf(sim, 'dora', 'snsapi_userinfo'))
  t.same(await userinfo(sim, grant.access_token, grant.openid), {
    openid: grant.openid, nickname: 'Dora', sex: 0, province: '', city: '', country: 'CN', headimgurl: 'https://thirdwx.qlogo.cn/mmopen/simulator/dora/132', privilege: [], unionid: sim.unionidOf('dora')
  })
  t.match(await userinfo(sim, '', grant.openid), { errcode: 41001 })
  t.match(await userinfo(sim, 'unknown-token', grant.openid), { errcode: 40001 })
  t.match(await userinfo(sim, grant.access_token, sim.openidOf('eve', DEV_OA_APPID)), { errcode: 40003 })
  const base = await exchange(sim, await codeOf(sim, 'dora'))
  t.match(await userinfo(sim, base.access_token, base.openid), { errcode: 48001 }, 'snsapi_base gives no userinfo')
  const plain = await exchange(sim, await codeOf(sim, 'nounion', 'snsapi_userinfo'))
  t.notOk('unionid' in await userinfo(sim, plain.access_token, plain.openid))
  t.match(await exchange(sim, await codeOf(sim, 'slow')), { openid: String }, 'slow answers after slowMs')
  clock += 7200 * SECOND
  t.match(await userinfo(sim, grant.access_token, grant.openid), { errcode: 42001 })
})

test('official accounts: listed once, never a mini program\'s appid', async (t) => {
  await t.rejects(startSimulator({ officialAccounts: [] }), /officialAccounts: give at least one/)
  await t.rejects(startSimulator({ appid: DEV_OA_APPID, secret: 'x' }), /appid wx00000000000000a0 is listed twice/)
  await t.rejects(startSimulator({ officialAccounts: [{ appid: 'wx1', secret: '' }] }), /non-empty appid and secret/)
})
