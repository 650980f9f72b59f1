import Fastify from 'fastify'
import { test } from 'tap'
import wechatAuth from '../../app.js'
import { serverOptions } from '../../lib/server-options.js'

test('refuses to boot on a bad value, naming it', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => { await app.register(wechatAuth, { env: false, config: { ACCESS_TOKEN_TTL: 'soon' } }) }, { code: 'CONFIG_INVALID', message: /ACCESS_TOKEN_TTL/ })
})

test('production refuses to boot on development defaults', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => { await app.register(wechatAuth, { env: { NODE_ENV: 'production' } }) }, { message: /requires WECHAT_APPID and WECHAT_SECRET \(or WECHAT_APPS\), REDIS_URL, JWT_SECRET/ })
})

test('development with no configuration runs, and says so loudly', async (t) => {
  const lines: string[] = []
  const app = Fastify(serverOptions({ LOG_LEVEL: 'info', TRUST_PROXY: 'false' }, { logStream: { write: (l) => { lines.push(l) } } }))
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { env: {} })
  await app.ready()
  const warn = lines.map((l) => JSON.parse(l) as { level: number, msg: string, devDefaults?: string[] }).filter((l) => l.level === 40)
  t.match(warn[0], { msg: /DEVELOPMENT MODE/, devDefaults: [/simulator/, /memory/, /JWT_SECRET/] })
  t.match(warn[1], { msg: /WeChat simulator started/ })
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'alice' } })
  t.equal(res.statusCode, 200, 'logs in through the built-in simulator')
})
