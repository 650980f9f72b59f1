import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { request } from 'undici'
import { test, type Test } from 'tap'
import wechatAuth from '../../app.js'
import type { ConfigInput } from '../../lib/schemas.js'
import configPlugin from '../../plugins/config.js'
import simulatorPlugin from '../../plugins/simulator.js'
import storePlugin from '../../plugins/store.js'
import wechatPlugin from '../../plugins/wechat.js'
import { DEV_APPID } from '../../simulator/index.js'
import { buildApp, freePort, startSim } from '../helper.js'

/** An instance with the config, the simulator plugin and fastify.wechat, and the warn lines it logs. */
async function devApp (t: Test, config: ConfigInput = {}): Promise<{ app: FastifyInstance, warnings: Array<Record<string, unknown>> }> {
  const app = Fastify()
  t.teardown(async () => await app.close())
  const warnings: Array<Record<string, unknown>> = []
  app.log.warn = ((obj: Record<string, unknown>) => { warnings.push(obj) }) as typeof app.log.warn
  await app.register(configPlugin, { env: {}, config })
  await app.register(storePlugin)
  await app.register(simulatorPlugin)
  await app.register(wechatPlugin)
  await app.ready()
  return { app, warnings }
}

const simulatorUrlOf = (warnings: Array<Record<string, unknown>>): string =>
  String(warnings.find((w) => w.simulator !== undefined)?.simulator ?? '')

test('without credentials in development, fastify.wechat talks to a simulator the plugin starts and stops', async (t) => {
  const { app, warnings } = await devApp(t)
  const simulatorUrl = simulatorUrlOf(warnings)
  t.equal(app.wechat.appid, DEV_APPID)
  t.match(simulatorUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'the simulator runs on loopback')
  t.match(app.wechatAuthSimulator, { url: simulatorUrl, apps: [{ appid: DEV_APPID, secret: String }] })
  const identity = await app.wechat.code2Session('alice')
  t.match(identity, { openid: /^o/, unionid: /^u/, sessionKey: String })
  await app.close()
  await t.rejects(request(`${simulatorUrl}/sns/jscode2session`), { code: 'ECONNREFUSED' }, 'closed with the app')
})

test('the dev simulator takes another port when WECHAT_SIMULATOR_PORT is taken', async (t) => {
  const busy = createServer()
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => busy.close())
  const port = (busy.address() as AddressInfo).port
  const { app, warnings } = await devApp(t, { WECHAT_SIMULATOR_PORT: port })
  const simulatorUrl = simulatorUrlOf(warnings)
  t.match(simulatorUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.not(simulatorUrl, `http://127.0.0.1:${port}`)
  t.match(await app.wechat.code2Session('alice'), { openid: /^o/ })
})

test('the dev simulator listens on WECHAT_SIMULATOR_PORT, else on PORT + 1, else (PORT 0) on any free port', async (t) => {
  const port = await freePort()
  t.equal((await devApp(t, { WECHAT_SIMULATOR_PORT: port })).app.wechatAuthSimulator.url, `http://127.0.0.1:${port}`)
  const next = await freePort()
  t.equal((await devApp(t, { PORT: next - 1 })).app.wechatAuthSimulator.url, `http://127.0.0.1:${next}`)
  t.match((await devApp(t, { PORT: 0 })).app.wechatAuthSimulator.url, /^http:\/\/127\.0\.0\.1:\d+$/)
})

test('with credentials, the plugin starts no simulator: nothing decorated, nothing logged', async (t) => {
  const { app, warnings } = await devApp(t, { WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'some-secret-0123456789', WECHAT_API_BASE: 'http://127.0.0.1:9' })
  t.equal(app.hasDecorator('wechatAuthSimulator'), false)
  t.same(warnings.filter((w) => w.simulator !== undefined), [])
  t.equal(app.wechat.appid, 'wx0123456789abcdef', 'fastify.wechat uses the credentials')
  await t.rejects(app.wechat.code2Session('alice'), { code: 'WX_UNAVAILABLE' }, 'and the configured API base')
})

test('the gateway registers the plugin only when the configuration asks for the simulator', async (t) => {
  const dev = Fastify()
  t.teardown(async () => await dev.close())
  await dev.register(wechatAuth, { env: {} })
  await dev.ready()
  t.equal(dev.hasDecorator('wechatAuthSimulator'), true, 'development without credentials')
  const sim = await startSim(t)
  const configured = await buildApp(t, { sim })
  t.equal(configured.hasDecorator('wechatAuthSimulator'), false, 'with credentials')
})

test('the plugin needs the config plugin, and fails at boot without it', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => { await app.register(simulatorPlugin); await app.ready() }, /wechat-auth-config/)
})
