// The demo page of the web QR login (routes/demo.ts): served in development with the built-in WeChat
// simulator only, under a Content-Security-Policy that fits it, and driven end to end in a real
// headless Chromium against a real Redis: the code shown, the simulated scan and confirm seen through
// the event stream, the page logged in; no secret in a log line.
import { createHash } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Page, Response } from 'playwright-core'
import { test, type Test } from 'tap'
import wechatAuth, { type WechatAuthOptions } from '../../app.js'
import { serverOptions } from '../../http/server-options.js'
import type { ConfigInput } from '../../lib/schemas.js'
import { browserSkip, launchChromium } from '../browser.js'
import { bearer, buildApp, startRedis, startSim, type Pair } from '../helper.js'

/** The standalone gateway in development: no WeChat credentials, so the built-in simulator runs. */
async function devGateway (t: Test, opts: Pick<WechatAuthOptions, 'demoPath'> & { config?: ConfigInput, logs?: string[] } = {}): Promise<FastifyInstance> {
  const { config, logs, ...pluginOpts } = opts
  const logStream = logs === undefined ? undefined : { write: (line: string) => { logs.push(line) } }
  const app = Fastify(serverOptions({ LOG_LEVEL: logs === undefined ? 'silent' : 'trace', TRUST_PROXY: 'false' }, { logStream }))
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { ...pluginOpts, env: false, config: { WECHAT_SIMULATOR_PORT: 0, ...config } })
  await app.ready()
  return app
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`
const inline = (html: string, tag: string): string => new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(html)?.[1] ?? ''

test('in development with the simulator: the page at <AUTH_PREFIX>/demo, under a CSP that allows its own script and style only', async (t) => {
  const app = await devGateway(t)
  const res = await app.inject('/auth/demo')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8')
  t.match(res.body, '<body data-prefix="/auth">', 'the page calls the gateway under its prefix')
  const csp = String(res.headers['content-security-policy']).split('; ')
  t.ok(csp.includes("default-src 'none'"), 'nothing else by default')
  t.ok(csp.includes(`script-src ${sha256(inline(res.body, 'script'))}`), 'the inline script by its hash')
  t.ok(csp.includes(`style-src ${sha256(inline(res.body, 'style'))}`), 'the inline style by its hash')
  t.ok(csp.includes("img-src 'self' data:") && csp.includes("connect-src 'self'"), 'the code image, fetch and the event stream: this origin only')
  t.ok(csp.includes("frame-ancestors 'none'"), 'never framed')
  t.notMatch(res.body, /(src|href)="(https?:)?\/\//, 'no external resource')
  t.match(res.headers, { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' })
  const openapi = (await app.inject('/auth/openapi.json')).json<{ paths: Record<string, unknown> }>()
  t.notOk('/auth/demo' in openapi.paths, 'not in the OpenAPI document')
  const queried = await app.inject('/auth/demo?x=1')
  t.same([queried.statusCode, queried.json().code], [400, 'FST_ERR_VALIDATION'], 'a query string is refused, as on the gateway\'s routes')
})

test('the page follows AUTH_PREFIX, or demoPath', async (t) => {
  const prefixed = await devGateway(t, { config: { AUTH_PREFIX: '/api/wx' } })
  const page = await prefixed.inject('/api/wx/demo')
  t.equal(page.statusCode, 200)
  t.match(page.body, '<body data-prefix="/api/wx">')
  // Mounted by a host under /v1: the page calls the routes where they are.
  const host = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUST_PROXY: 'false' }))
  t.teardown(async () => await host.close())
  await host.register(async (api) => { await api.register(wechatAuth, { env: false, config: { WECHAT_SIMULATOR_PORT: 0 } }) }, { prefix: '/v1' })
  t.match((await host.inject('/v1/auth/demo')).body, '<body data-prefix="/v1/auth">', 'under a host\'s prefix')
  const slash = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUST_PROXY: 'false' }))
  t.teardown(async () => await slash.close())
  await slash.register(async (api) => { await api.register(wechatAuth, { env: false, config: { WECHAT_SIMULATOR_PORT: 0 } }) }, { prefix: '/' })
  t.match((await slash.inject('/auth/demo')).body, '<body data-prefix="/auth">', 'a prefix of / adds no second slash (//auth would name a host)')
  const moved = await devGateway(t, { demoPath: '/qr-demo' })
  t.equal((await moved.inject('/qr-demo')).statusCode, 200)
  t.equal((await moved.inject('/auth/demo')).statusCode, 404)
  await t.rejects(devGateway(t, { demoPath: 'demo' }), { code: 'CONFIG_INVALID', message: /demoPath must be a path that starts with \// }, 'a bad path fails the boot')
})

test('never served in production, with real WeChat credentials, or with demoPath false', async (t) => {
  const notFound = async (app: FastifyInstance, url = '/auth/demo'): Promise<[number, string]> => {
    const res = await app.inject(url)
    return [res.statusCode, res.json().code]
  }
  const sim = await startSim(t)
  const production = await buildApp(t, { sim, redisServer: await startRedis(t), config: { NODE_ENV: 'production' } })
  t.same(await notFound(production), [404, 'ROUTE_NOT_FOUND'], 'production')
  t.same(await notFound(await buildApp(t, { sim, demoPath: '/auth/demo' })), [404, 'ROUTE_NOT_FOUND'], 'credentials (no simulator), even when a path is given')
  t.same(await notFound(await devGateway(t, { demoPath: false })), [404, 'ROUTE_NOT_FOUND'], 'turned off')
})

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

/** The next response of the page to `method path` (a path under the gateway's origin). */
const answer = async (page: Page, method: string, path: RegExp): Promise<Response> =>
  await page.waitForResponse((r) => r.request().method() === method && path.test(new URL(r.url()).pathname))

test('in a headless Chromium: the code shown, a simulated scan and confirm seen through the event stream, the page logged in', { skip: browserSkip() }, async (t) => {
  const redis = await startRedis(t)
  const logs: string[] = []
  const app = await devGateway(t, { config: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix }, logs })
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  const page = await (await launchChromium(t)).newPage()
  page.setDefaultTimeout(5000)
  const problems: string[] = []
  const consoleText: string[] = []
  page.on('console', (m) => { consoleText.push(m.text()); if (m.type() === 'error') problems.push(m.text()) })
  page.on('pageerror', (err) => problems.push(String(err)))
  page.on('request', (r) => { if (!r.url().startsWith(`${origin}/`)) problems.push(`a request elsewhere: ${r.url()}`) })

  const created = answer(page, 'POST', /^\/auth\/qr$/)
  const image = answer(page, 'GET', /^\/auth\/qr\/[\w-]{22}\/image$/)
  t.equal((await page.goto(`${origin}/auth/demo`))?.status(), 200)
  const web = await (await created).json() as { id: string, secret: string }
  t.equal((await image).headers()['content-type'], 'image/png')
  t.same((await (await image).body()).subarray(0, 8), PNG, 'the simulator\'s wxacode.getUnlimited PNG')
  // A function, not a string: a string predicate is eval'd in the page while polling, which its CSP forbids.
  const img = await page.waitForSelector('#code')
  await page.waitForFunction((el: { complete: boolean, naturalWidth: number }) => el.complete && el.naturalWidth > 0, img as never)
  t.pass('the code image is loaded and shown')
  t.equal(await page.textContent('#qr-id'), web.id, 'the scene shown')
  await page.waitForSelector('#states li[data-state=pending]')

  const login = answer(page, 'POST', /^\/auth\/login$/)
  const scan = answer(page, 'POST', new RegExp(`^/auth/qr/${web.id}/scan$`))
  const collected = answer(page, 'POST', new RegExp(`^/auth/qr/${web.id}/token$`))
  await page.click('#play')
  const code = (await login).request().postDataJSON().code as string
  t.match(code, /^demo-user\.[0-9a-f]{16}$/, 'a fresh simulator code')
  const mp = await (await login).json() as Pair
  t.match(await (await scan).json(), { state: 'scanned', client: { ip: '127.0.0.1', userAgent: /Chrome/, createdAt: String } })
  t.equal(await page.textContent('#asking-ip'), '127.0.0.1', 'what scan reports is shown: IP')
  t.match(await page.textContent('#asking-ua'), /Chrome/, 'user agent')
  t.not(await page.textContent('#asking-time'), '', 'time')
  await page.waitForSelector('#states li[data-state=confirmed]')
  const states = await Promise.all((await page.locator('#states li').all()).map(async (li) => await li.getAttribute('data-state')))
  t.same(states, ['pending', 'scanned', 'confirmed'], 'every state, from the event stream')
  await page.waitForSelector('#web-result:not([hidden])')
  const me = JSON.parse(await page.textContent('#me') ?? '') as { openid: string, sessionId: string }
  t.equal(me.openid, mp.openid, 'logged in as the user who confirmed: GET /me\'s answer shown')
  const pair = await (await collected).json() as Pair
  const sessions = (await app.inject({ url: '/auth/sessions', headers: bearer(mp.accessToken) })).json<{ sessions: Array<{ sessionId: string, deviceType: string }> }>().sessions
  t.match(sessions.find((s) => s.sessionId === me.sessionId), { deviceType: 'web' }, 'a new `web` session')

  const next = answer(page, 'POST', /^\/auth\/qr$/)
  await page.click('#restart')
  const other = await (await next).json() as { id: string, secret: string }
  await page.waitForSelector('#states li[data-state=pending]')
  t.equal(await page.isHidden('#web-result'), true, 'a new code starts over')
  await page.click('#scan')
  await page.waitForSelector('#cancel:not([disabled])')
  await page.click('#cancel')
  await page.waitForSelector('#states li[data-state=cancelled]')
  t.equal(await page.isHidden('#web-result'), true, 'cancelled: nothing collected')

  t.same(problems, [], 'no script error, CSP violation or request elsewhere')
  const text = logs.join('\n')
  t.ok(logs.length > 10, `captured ${logs.length} log lines`)
  const secrets: Array<[string, string]> = [
    ['QR secret', web.secret], ['QR secret', other.secret], ['login code', code],
    ['refresh token', mp.refreshToken], ['refresh token', pair.refreshToken], ['access token signature', pair.accessToken.split('.')[2] as string]
  ]
  for (const [what, value] of secrets) t.notOk(text.includes(value), `no ${what} in the logs`)
  t.notOk(consoleText.join('\n').includes(web.secret), 'nor in the browser\'s console')
  t.notOk((await page.content()).includes(web.secret), 'the secret is never in the document')
})

test('in a headless Chromium: Redis stopped, the page says so with the code; started again, the stream goes on', { skip: browserSkip() }, async (t) => {
  const redis = await startRedis(t, { own: true })
  const app = await devGateway(t, { config: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix } })
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  const page = await (await launchChromium(t)).newPage()
  page.setDefaultTimeout(5000)
  t.equal((await page.goto(`${origin}/auth/demo`))?.status(), 200)
  await page.waitForSelector('#states li[data-state=pending]')
  await redis.stop()
  await page.waitForSelector('#error:not(:empty)') // a selector: a string predicate would be eval'd under the page's CSP
  t.match(await page.textContent('#error'), /^STORE_UNAVAILABLE: the gateway cannot read this login for now/, 'the outage, from the event stream')
  await redis.start() // empty: the login was lost with it
  await page.waitForSelector('#states li[data-state=expired]')
  t.equal(await page.textContent('#error'), '', 'cleared when the stream sends a state again')
})
