import Fastify from 'fastify'
import { test } from 'tap'
import configPlugin from '../../plugins/config.js'
import storePlugin from '../../plugins/store.js'
import wechatPlugin from '../../plugins/wechat.js'
import { APPID, SECRET, buildApp, startRedis, startSim } from '../helper.js'

test('with credentials, fastify.wechat uses them and starts no simulator', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(configPlugin, { env: false, config: { WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'some-secret-0123456789', WECHAT_API_BASE: 'http://127.0.0.1:9' } })
  await app.register(storePlugin)
  await app.register(wechatPlugin)
  t.equal(app.wechat.appid, 'wx0123456789abcdef')
  await t.rejects(app.wechat.code2Session('alice'), { code: 'WX_UNAVAILABLE' })
})

test('without credentials and without the simulator plugin, the boot fails naming what is missing', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(configPlugin, { env: {} })
  await app.register(storePlugin)
  await t.rejects(async () => { await app.register(wechatPlugin) }, { message: /WECHAT_APPID and WECHAT_SECRET, or WECHAT_APPS; in development, the wechat-auth-simulator plugin/ })
})

test('two instances sharing Redis, 50 concurrent access_token calls each: one stable_token call', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t, { stableTokenDelayMs: 100 })
  const a = await buildApp(t, { sim, redisServer: redis })
  const b = await buildApp(t, { sim, redisServer: redis })
  const tokens = await Promise.all(Array.from({ length: 100 }, async (_, i) => await (i % 2 === 0 ? a : b).wechat.getAccessToken()))
  t.equal(sim.calls.filter((c) => c.path === '/cgi-bin/stable_token').length, 1, 'one upstream call between them')
  t.same([...new Set(tokens)], [sim.accessTokenOf()])
  const c = await buildApp(t, { sim, redisServer: redis })
  t.equal(await c.wechat.getAccessToken(), sim.accessTokenOf(), 'a third instance takes it from Redis')
  t.equal(sim.calls.filter((c) => c.path === '/cgi-bin/stable_token').length, 1)
})

test('checkSessionKey and resetSessionKey sign with the session_key and follow WeChat', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim })
  const { openid, sessionKey } = await app.wechat.code2Session('alice')
  t.equal(await app.wechat.checkSessionKey(openid, sessionKey), true)
  t.equal(await app.wechat.checkSessionKey(openid, Buffer.alloc(16, 1).toString('base64')), false, 'another key: 87009 is an answer, not an error')
  const reset = await app.wechat.resetSessionKey(openid, sessionKey)
  t.equal(reset.openid, openid)
  t.not(reset.sessionKey, sessionKey)
  t.equal(reset.sessionKey, sim.sessionKeyOf('alice'))
  t.equal(await app.wechat.checkSessionKey(openid, sessionKey), false, 'the old key is gone')
  t.equal(await app.wechat.checkSessionKey(openid, reset.sessionKey), true)
  await t.rejects(app.wechat.resetSessionKey(openid, sessionKey), { code: 'WX_SESSION_KEY_STALE', statusCode: 401 })
  sim.invalidateAccessToken()
  t.equal(await app.wechat.checkSessionKey(openid, reset.sessionKey), true, 'a refused access_token is renewed and the call retried')
  t.same(sim.calls.filter((c) => c.path === '/wxa/checksession').slice(-2).map((c) => c.errcode), [40001, 0])
})

test('the appid argument picks the mini program; unknown or missing ones are WX_APP_UNKNOWN', async (t) => {
  const other = { appid: 'wx00000000000000bb', secret: 'secret-of-app-b-0123456789' }
  const sim = await startSim(t, { apps: [{ appid: APPID, secret: SECRET }, other] })
  const app = await buildApp(t, { sim, apps: [other] })
  t.equal(app.wechat.appid, APPID, 'the first one is the default')
  t.same(app.wechat.appids, [APPID, other.appid])
  await t.rejects(app.wechat.getAccessToken(), { code: 'WX_APP_UNKNOWN', statusCode: 400 })
  await t.rejects(app.wechat.code2Session('alice', 'wx1111111111111111'), { code: 'WX_APP_UNKNOWN' })
  t.equal(await app.wechat.getAccessToken(other.appid), sim.accessTokenOf(other.appid))
  t.not(await app.wechat.getAccessToken(APPID), await app.wechat.getAccessToken(other.appid), 'one token per mini program')
  const phone = await app.wechat.getPhoneNumber('dave.1', other.appid)
  t.same(phone, sim.phoneOf('dave'))
  t.match(sim.calls.at(-1), { path: '/wxa/business/getuserphonenumber', appid: other.appid })
  t.throws(() => app.authenticateFor('wx2222222222222222'), { code: 'WX_APP_UNKNOWN' }, 'a typo in the host\'s code fails when it is wired')
})
