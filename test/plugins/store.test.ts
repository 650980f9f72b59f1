import Fastify from 'fastify'
import { test } from 'tap'
import wechatAuth from '../../app.js'
import { freePort, startSim } from '../helper.js'

test('an unreachable REDIS_URL refuses the boot within seconds', async (t) => {
  const sim = await startSim(t)
  const app = Fastify()
  t.teardown(async () => await app.close())
  const started = Date.now()
  const url = `redis://127.0.0.1:${await freePort()}`
  await t.rejects(async () => {
    await app.register(wechatAuth, {
      env: false,
      config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, REDIS_URL: url, STORE_TIMEOUT_MS: 300 }
    })
  }, { message: /REDIS_URL: cannot connect to Redis/ })
  t.ok(Date.now() - started < 3000)
})
