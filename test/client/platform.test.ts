// fastify-wechat-auth/client when the platform fails it: wx.login() fails, no answer comes, storage
// throws, a listener throws, or baseUrl leads to something that is not the gateway.
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
