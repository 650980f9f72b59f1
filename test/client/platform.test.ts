// fastify-wechat-auth/client when the platform fails it: wx.login() fails, no answer comes, storage
// throws, a listener throws, or baseUrl leads to something that is not the gateway; and the URLs the
// Bearer token may go to.
import { test } from 'tap'
import { createWechatAuthClient, type WechatAuthError } from '../../client/index.js'
import { gateway, standIn } from './stand-in.js'

const codeOf = async (p: Promise<unknown>): Promise<string> => await p.then(() => 'ok', (err: WechatAuthError) => err.code)

test('wx.login() fails or gives no code: CLIENT_WX_LOGIN_FAILED, nothing sent', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('alice')
  mp.wx.login = ({ fail }) => fail({ errMsg: 'login:fail' })
  t.equal(await codeOf(createWechatAuthClient({ platform: mp.wx, baseUrl }).ensureLogin()), 'CLIENT_WX_LOGIN_FAILED')
  mp.wx.login = ({ success }) => success({ code: '' })
  t.equal(await codeOf(createWechatAuthClient({ platform: mp.wx, baseUrl }).ensureLogin()), 'CLIENT_WX_LOGIN_FAILED')
  t.equal(mp.calls['POST /auth/login'], undefined)
})

test('wx.login() is given a timeout: one that gives up is CLIENT_WX_LOGIN_FAILED, not every request held for good', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('alma')
  const asked: unknown[] = []
  // As WeChat does when the timeout it was given has passed (without one, it may never call back).
  mp.wx.login = ({ timeout, fail }) => { asked.push(timeout); if (typeof timeout === 'number') setTimeout(() => fail({ errMsg: 'login:fail timeout' }), 10) }
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const settled = await Promise.race([codeOf(client.request({ url: '/api/orders' })), new Promise((resolve) => setTimeout(() => resolve('still pending'), 2000))])
  t.equal(settled, 'CLIENT_WX_LOGIN_FAILED')
  t.ok(asked.length === 1 && typeof asked[0] === 'number' && asked[0] > 0 && asked[0] <= 10_000, `a timeout of ${String(asked[0])} ms`)
})

test('no answer: CLIENT_NETWORK with status 0; logout offline still forgets the tokens', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('bob')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  await client.ensureLogin()
  mp.drop('GET /api/orders')
  t.match(await client.request({ url: '/api/orders' }).catch((e: WechatAuthError) => e), { code: 'CLIENT_NETWORK', statusCode: 0, message: 'request:fail timeout' })
  const offline = createWechatAuthClient({ platform: mp.wx, baseUrl: 'http://127.0.0.1:1' })
  await offline.logout()
  t.equal(offline.session(), null)
  t.equal(mp.storage.has('wechat-auth'), false)
})

test('a baseUrl that is not the gateway: CLIENT_BAD_RESPONSE, not a session of nothing', async (t) => {
  const { baseUrl } = await gateway(t, { routes: (app) => app.post('/other/login', async () => ({ hello: 'world' })) })
  const client = createWechatAuthClient({ platform: standIn('carol').wx, baseUrl, prefix: '/other' })
  t.equal(await codeOf(client.ensureLogin()), 'CLIENT_BAD_RESPONSE')
  t.equal(client.session(), null)
})

test('storage that throws and listeners that throw break nothing; on() returns a way to stop', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('dave')
  const broken = () => { throw new Error('storage full') }
  Object.assign(mp.wx, { getStorageSync: broken, setStorageSync: broken, removeStorageSync: broken })
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const seen: string[] = []
  client.on('loggedIn', () => { throw new Error('a bug in the app') })
  const stop = client.on('loggedIn', (s) => seen.push(s.openid))
  t.equal((await client.request({ url: '/api/orders' })).statusCode, 200, 'kept in memory')
  t.equal(seen.length, 1)
  stop()
  stop()
  await client.logout()
  await client.ensureLogin()
  t.equal(seen.length, 1, 'no longer listening')
})

test('the Bearer token goes only to baseUrl\'s origin and options.origins: any other absolute URL is CLIENT_FOREIGN_URL, nothing sent', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('erin')
  const sent: Array<{ url: string, authorization?: string }> = []
  const request = mp.wx.request
  mp.wx.request = (opts) => {
    sent.push({ url: opts.url, authorization: opts.header?.Authorization })
    request(opts)
  }
  const other = baseUrl.replace('127.0.0.1', 'localhost')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl, origins: [other] })
  await client.ensureLogin()
  sent.length = 0
  const host = baseUrl.slice('http://'.length)
  for (const url of ['https://evil.example/api/orders', `http://${host}.evil.example/api/orders`, `http://${host}@evil.example/api/orders`,
    `http://${host}\\@evil.example/api/orders`, `https://${host}/api/orders`, 'HTTP://evil.example/api/orders', 'javascript:alert(1)']) {
    t.match(await client.request({ url }).catch((e: WechatAuthError) => e), { code: 'CLIENT_FOREIGN_URL', statusCode: 0 }, url)
  }
  t.same(sent, [], 'not one of them sent')

  t.match(await client.request({ url: `${baseUrl.toUpperCase()}/api/orders`.replace('/API/ORDERS', '/api/orders') }), { statusCode: 200 }, 'the gateway\'s origin in capitals')
  t.match(await client.request({ url: `${other}/api/orders` }), { statusCode: 200 }, 'an origin of options.origins')
  t.match(await client.request({ url: 'api/orders' }), { statusCode: 200 }, 'a path without its leading /')
  t.equal(sent.length, 3)
  t.ok(sent.every((s) => s.authorization?.startsWith('Bearer ')), 'each with the token')
  t.equal(sent[2]?.url, `${baseUrl}/api/orders`)
  t.match(await client.request({ url: 'http://127.0.0.1:1/elsewhere', auth: false }).catch((e: WechatAuthError) => e), { code: 'CLIENT_NETWORK' }, 'auth: false goes anywhere')
  t.equal(sent[3]?.authorization, undefined, 'without a token')
})
