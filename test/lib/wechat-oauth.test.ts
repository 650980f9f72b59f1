// An official account's web authorization calls (lib/wechat-oauth.ts): against the simulator, and
// against a stand-in that answers what WeChat should never answer.
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test, type Test } from 'tap'
import { request } from 'undici'
import { createWeChatOAuth } from '../../lib/wechat-oauth.js'
import { startSim } from '../helper.js'

type Answers = Record<string, (req: IncomingMessage) => unknown>

/** A server answering each path with the JSON its function returns. */
async function standIn (t: Test, answers: Answers): Promise<string> {
  const server = createServer((req, res) => {
    const answer = answers[new URL(req.url ?? '/', 'http://x').pathname]
    res.writeHead(answer === undefined ? 404 : 200, { 'content-type': 'text/plain' }).end(JSON.stringify(answer?.(req) ?? {}))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function oauthFor (t: Test, apiBase: string, secret = 'an-official-account-secret') {
  const warnings: Array<Record<string, unknown>> = []
  const log = { warn: (o: object) => { warnings.push(o as Record<string, unknown>) }, error: (o: object) => { warnings.push(o as Record<string, unknown>) } }
  const oauth = createWeChatOAuth({ account: { appid: 'wx00000000000000a0', secret }, apiBase, authorizeUrl: 'https://open.weixin.qq.com/connect/oauth2/authorize', timeoutMs: 2000, log })
  t.teardown(async () => await oauth.close())
  return { oauth, warnings }
}

const TOKEN = 'u'.repeat(40)

test('the authorize URL is WeChat\'s, with the redirect URI encoded and #wechat_redirect', async (t) => {
  const { oauth } = oauthFor(t, 'http://127.0.0.1:9')
  const url = new URL(oauth.authorizeUrl('https://h5.example.com/app/?a=1&b=2', 'snsapi_userinfo', 'the.state'))
  t.equal(`${url.origin}${url.pathname}`, 'https://open.weixin.qq.com/connect/oauth2/authorize')
  t.same([...url.searchParams.keys()], ['appid', 'redirect_uri', 'response_type', 'scope', 'state'], 'in the order WeChat documents')
  t.match(Object.fromEntries(url.searchParams), { appid: 'wx00000000000000a0', redirect_uri: 'https://h5.example.com/app/?a=1&b=2', response_type: 'code', scope: 'snsapi_userinfo', state: 'the.state' })
  t.equal(url.hash, '#wechat_redirect')
})

test('against the simulator: a code for openid, unionid and scopes; userinfo; WeChat\'s errcodes as codes', async (t) => {
  const sim = await startSim(t)
  const { oauth, warnings } = oauthFor(t, sim.url, sim.officialAccount.secret)
  const codeOf = async (user: string, scope: string): Promise<string> => {
    const res = await request(`${sim.url}/connect/oauth2/authorize?${new URLSearchParams({ appid: sim.officialAccount.appid, redirect_uri: 'https://h5.example.com/', response_type: 'code', scope, state: 's', user }).toString()}`)
    await res.body.dump()
    return new URL(String(res.headers.location)).searchParams.get('code') as string
  }
  const grant = await oauth.exchangeCode(await codeOf('alice', 'snsapi_userinfo'))
  t.match(grant, { openid: sim.openidOf('alice', sim.officialAccount.appid), unionid: sim.unionidOf('alice'), scopes: ['snsapi_userinfo'], accessToken: String })
  t.same(await oauth.userInfo(grant), { info: { nickname: 'Alice', headimgurl: 'https://thirdwx.qlogo.cn/mmopen/simulator/alice/132', sex: 0, province: '', city: '', country: 'CN' }, unionid: sim.unionidOf('alice') })
  const base = await oauth.exchangeCode(await codeOf('alice', 'snsapi_base'))
  await t.rejects(oauth.userInfo(base), { code: 'WX_BAD_RESPONSE' }, '48001: a snsapi_base token')
  await t.rejects(oauth.exchangeCode(await codeOf('invalid', 'snsapi_base')), { code: 'WX_OAUTH_CODE_INVALID', statusCode: 401 })
  const code = await codeOf('bob', 'snsapi_base')
  await oauth.exchangeCode(code)
  await t.rejects(oauth.exchangeCode(code), { code: 'WX_OAUTH_CODE_USED', statusCode: 401 })
  await t.rejects(oauth.exchangeCode(await codeOf('limit', 'snsapi_base')), { code: 'WX_RATE_LIMITED' })
  const text = JSON.stringify(warnings)
  t.match(text, /40029/)
  t.notOk(text.includes(code), 'no code in a log line')
  t.notOk(text.includes(sim.officialAccount.secret), 'nor the secret')
  const wrong = oauthFor(t, sim.url, 'not-the-account-secret')
  await t.rejects(wrong.oauth.exchangeCode(await codeOf('carol', 'snsapi_base')), { code: 'WX_CREDENTIALS_REJECTED', statusCode: 502 })
})

test('answers WeChat should never give are WX_BAD_RESPONSE; userinfo fields are bounded', async (t) => {
  let grant: Record<string, unknown> = {}
  let info: Record<string, unknown> = {}
  const base = await standIn(t, { '/sns/oauth2/access_token': () => grant, '/sns/userinfo': () => info })
  const { oauth } = oauthFor(t, base)
  const bad = async (answer: Record<string, unknown>, what: string): Promise<void> => {
    grant = answer
    await t.rejects(oauth.exchangeCode('c'), { code: 'WX_BAD_RESPONSE' }, what)
  }
  await bad({ access_token: TOKEN }, 'no openid')
  await bad({ openid: 'o1', access_token: 'short' }, 'no valid access_token')
  await bad({ openid: 'o1', access_token: TOKEN, unionid: 'not a unionid!' }, 'a unionid of another shape')
  grant = { openid: 'o1', access_token: TOKEN }
  t.same(await oauth.exchangeCode('c'), { openid: 'o1', scopes: [], accessToken: TOKEN }, 'no scope, no unionid')
  grant = { openid: 'o1', access_token: TOKEN, scope: 'snsapi_base,snsapi_userinfo', unionid: '' }
  const g = await oauth.exchangeCode('c')
  t.same(g.scopes, ['snsapi_base', 'snsapi_userinfo'])
  t.notOk('unionid' in g, 'an empty unionid is none')

  info = { openid: 'someone-else' }
  await t.rejects(oauth.userInfo(g), { code: 'WX_BAD_RESPONSE' }, 'userinfo of another user')
  info = { openid: 'o1', unionid: 'not a unionid!' }
  await t.rejects(oauth.userInfo(g), { code: 'WX_BAD_RESPONSE' }, 'a unionid of another shape')
  info = { openid: 'o1', nickname: 'n'.repeat(100), headimgurl: 'javascript:alert(1)', sex: 2, province: 7, unionid: 'u1' }
  t.same(await oauth.userInfo(g), { info: { nickname: 'n'.repeat(64), headimgurl: '', sex: 2, province: '', city: '', country: '' }, unionid: 'u1' })
  info = { openid: 'o1', sex: 'f', headimgurl: 'https://thirdwx.qlogo.cn/a/132' }
  t.same(await oauth.userInfo(g), { info: { nickname: '', headimgurl: 'https://thirdwx.qlogo.cn/a/132', sex: 0, province: '', city: '', country: '' } })
  for (const errcode of [40001, 42001]) {
    info = { errcode, errmsg: 'the user token' }
    await t.rejects(oauth.userInfo(g), { code: 'WX_BAD_RESPONSE', message: new RegExp(String(errcode)) }, `${errcode}: the user's token, not the gateway's`)
  }
})
