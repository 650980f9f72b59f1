import Fastify from 'fastify'
import { request } from 'undici'
import { test } from 'tap'
import configPlugin from '../../plugins/config.js'
import storePlugin from '../../plugins/store.js'
import wechatPlugin from '../../plugins/wechat.js'
import { DEV_APPID } from '../../simulator/index.js'

test('without credentials in development, fastify.wechat talks to a simulator it starts and stops', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  let simulatorUrl = ''
  app.log.warn = ((obj: { simulator?: string }) => { simulatorUrl = obj.simulator ?? simulatorUrl }) as typeof app.log.warn
  await app.register(configPlugin, { env: {} })
  await app.register(storePlugin)
  await app.register(wechatPlugin)
  await app.ready()
  t.equal(app.wechat.appid, DEV_APPID)
  t.match(simulatorUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'the simulator runs on loopback')
  const identity = await app.wechat.code2Session('alice')
  t.match(identity, { openid: /^o/, unionid: /^u/, sessionKey: String })
  await app.close()
  await t.rejects(request(`${simulatorUrl}/sns/jscode2session`), { code: 'ECONNREFUSED' }, 'closed with the app')
})

test('with credentials, fastify.wechat uses them and starts no simulator', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(configPlugin, { env: false, config: { WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'some-secret-0123456789', WECHAT_API_BASE: 'http://127.0.0.1:9' } })
  await app.register(storePlugin)
  await app.register(wechatPlugin)
  t.equal(app.wechat.appid, 'wx0123456789abcdef')
  await t.rejects(app.wechat.code2Session('alice'), { code: 'WX_UNAVAILABLE' })
})
