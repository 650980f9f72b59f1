import { test, type Test } from 'tap'
import { createMemoryStore } from '../../lib/store/memory.js'
import { createWeChatApi, type WeChatApiOptions } from '../../lib/wechat-api.js'
import { createWeChatDispatcher } from '../../lib/wechat-transport.js'
import { startSim, APPID, SECRET } from '../helper.js'

const OTHER = { appid: 'wx00000000000000bb', secret: 'secret-of-app-b-0123456789' }
const quiet = { info: () => {}, warn: () => {}, error: () => {} }

/** The API over a memory store and a pool closed at teardown, as the wechat plugin builds it. */
function apiFor (t: Test, apps: WeChatApiOptions['apps'], apiBase: string) {
  const store = createMemoryStore()
  const dispatcher = createWeChatDispatcher()
  t.teardown(async () => { await dispatcher.destroy(); await store.close() })
  return createWeChatApi({ apps, apiBase, timeoutMs: 2000, storeTimeoutMs: 500, store, log: quiet, dispatcher })
}

test('no mini program: refused, naming the options and the development plugin', async (t) => {
  t.throws(() => apiFor(t, [], 'http://127.0.0.1:9'), /WECHAT_APPID and WECHAT_SECRET, or WECHAT_APPS; in development, the wechat-auth-simulator plugin/)
})

test('one mini program is the default; with several an appid is required, and must be one served', async (t) => {
  const sim = await startSim(t, { apps: [{ appid: APPID, secret: SECRET }, OTHER] })
  const one = apiFor(t, [{ appid: APPID, secret: SECRET }], sim.url)
  t.equal(one.appOf(), APPID)
  t.same(one.appids, [APPID])
  t.throws(() => one.appOf(OTHER.appid), { code: 'WX_APP_UNKNOWN', statusCode: 400 })

  const two = apiFor(t, [{ appid: APPID, secret: SECRET }, OTHER], sim.url)
  t.equal(two.appid, APPID, 'the first is the default')
  t.throws(() => two.appOf(), { code: 'WX_APP_UNKNOWN', message: /An appid is required/ })
  t.throws(() => two.appOf('wx1111111111111111'), { code: 'WX_APP_UNKNOWN', message: 'wx1111111111111111 is not a mini program this gateway serves' }, 'an appid is named')
  // Anything else the caller put there (a token in the wrong field) is neither answered nor logged back.
  for (const other of [`wx1111111111111111${'x'.repeat(100)}`, 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', 'WX1111111111111111']) {
    t.throws(() => two.appOf(other), { code: 'WX_APP_UNKNOWN', message: 'The appid is not a mini program this gateway serves' }, `not named: ${other.slice(0, 20)}`)
  }
  t.equal(two.appOf(OTHER.appid), OTHER.appid)
})

test('each call goes to the mini program asked for, with its own access_token', async (t) => {
  const sim = await startSim(t, { apps: [{ appid: APPID, secret: SECRET }, OTHER] })
  const api = apiFor(t, [{ appid: APPID, secret: SECRET }, OTHER], sim.url)
  const { openid, sessionKey } = await api.code2Session('alice', OTHER.appid)
  t.equal(openid, sim.openidOf('alice', OTHER.appid))
  t.equal(await api.getAccessToken(OTHER.appid), sim.accessTokenOf(OTHER.appid))
  t.equal(await api.checkSessionKey(openid, sessionKey, OTHER.appid), true)
  t.match(sim.calls.at(-1), { path: '/wxa/checksession', appid: OTHER.appid })
  const reset = await api.resetSessionKey(openid, sessionKey, OTHER.appid)
  t.equal(reset.sessionKey, sim.sessionKeyOf('alice', OTHER.appid))
  t.same(await api.getPhoneNumber('dave.1', OTHER.appid), sim.phoneOf('dave'))
  t.equal(sim.accessTokenOf(), undefined, 'the default mini program was never asked for one')
})
