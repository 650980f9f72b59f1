// The OpenAPI document is the gateway's contract: valid OpenAPI, every route with a summary, tag and
// operationId, bearer security exactly where a route asks for a token, every error code of
// docs/http-api.md with its status, examples that work against the development simulator. A host's own
// @fastify/swagger lists the gateway's routes instead, and production serves nothing unless asked.
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import SwaggerParser from '@apidevtools/swagger-parser'
import swagger from '@fastify/swagger'
import Fastify, { type FastifyInstance, type RouteOptions } from 'fastify'
import { test } from 'tap'
import wechatAuth, { type WechatAuthOptions } from '../../app.js'
import wechatAuthAdmin from '../../routes/admin.js'
import { serverOptions } from '../../http/server-options.js'
import { Tags, type ConfigInput } from '../../lib/schemas.js'
import { bearer, JWT_SECRET, startRedis, startSim } from '../helper.js'

const ADMIN_TOKEN = 'an-admin-token-for-the-openapi-test-0123456789'

type Tap = { teardown: (fn: () => unknown) => void }
type Media = { schema?: { properties?: { code?: { enum?: string[] }, statusCode?: { enum?: number[] } } }, examples?: Record<string, unknown>, example?: unknown }
type Response = { description?: string, content?: Record<string, Media> }
interface Operation {
  summary?: string
  tags?: string[]
  operationId?: string
  security?: unknown
  requestBody?: { required?: boolean, content: Record<string, Media> }
  responses: Record<string, Response>
}
interface Document {
  openapi: string
  tags?: Array<{ name: string }>
  paths: Record<string, Record<string, Operation>>
  components?: { securitySchemes?: Record<string, { type: string, scheme?: string }>, responses?: Record<string, Response> }
}

/** code -> status and the routes its row names, from docs/http-api.md's "Errors" table (boot errors have no status). */
function documentedCodes (): Map<string, { status: number, routes: string[] }> {
  const markdown = readFileSync(new URL('../../docs/http-api.md', import.meta.url), 'utf8')
  const section = markdown.slice(markdown.indexOf('\n## Errors\n'), markdown.indexOf('\n### Errors at boot'))
  return new Map([...section.matchAll(/^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*(\d{3})\s*\|(.*)$/gm)].map((m) => [m[1] as string, {
    status: Number(m[2]),
    routes: [...(m[3] as string).matchAll(/`([A-Z]+) (\/[^`\s]*)`/g)].map((r) => `${r[1] as string} ${(r[2] as string).replace(/:(\w+)/g, '{$1}')}`)
  }]))
}

/** code -> the statuses of the error responses that name it, in operations and in components.responses. */
function codesIn (doc: Document): Map<string, Set<number>> {
  const found = new Map<string, Set<number>>()
  const responses = [
    ...Object.values(doc.paths).flatMap((path) => Object.values(path).flatMap((op) => Object.entries(op.responses))),
    ...Object.values(doc.components?.responses ?? {}).map((r) => [r.description?.slice(0, 3) ?? '', r] as const)
  ]
  for (const [status, response] of responses.filter(([status]) => Number(status) >= 400)) {
    for (const code of response.content?.['application/json']?.schema?.properties?.code?.enum ?? []) {
      found.set(code, new Set([...(found.get(code) ?? []), Number(status)]))
    }
  }
  return found
}

const operations = (doc: Document): Array<[string, string, Operation]> =>
  Object.entries(doc.paths).flatMap(([url, path]) => Object.entries(path).map(([method, op]) => [method.toUpperCase(), url, op] as [string, string, Operation]))

/** The development gateway (`npm start` without configuration), with the routes it adds. */
async function devGateway (t: Tap, opts: Omit<WechatAuthOptions, 'config' | 'env'> & { config?: ConfigInput } = {}) {
  const app = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUST_PROXY: 'false' }))
  t.teardown(async () => await app.close())
  const routes: RouteOptions[] = []
  app.addHook('onRoute', (route) => { routes.push(route) })
  await app.register(wechatAuth, { ...opts, env: false, config: { LOG_LEVEL: 'silent', WECHAT_SIMULATOR_PORT: 0, ...opts.config } })
  await app.ready()
  return { app, routes }
}

/** The hooks `printRoutes` lists for one route: what runs for each of its requests. */
function hooksOf (app: FastifyInstance, method: string, url: string): string {
  const printed = app.printRoutes({ commonPrefix: false, includeHooks: true })
  const at = new RegExp(`── ${url.replace(/[/.-]/g, '\\$&')} \\([A-Z, ]*\\b${method}\\b[A-Z, ]*\\)\\n((?:[│ ]*• .*\\n)*)`).exec(printed)
  return at?.[1]?.replace(/[│ ]/g, '') ?? 'not found'
}

test('the development gateway serves a valid OpenAPI 3.1 document of every route', async (t) => {
  const { app, routes } = await devGateway(t)
  const res = await app.inject('/auth/openapi.json')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const doc = res.json<Document>()
  await t.resolves(SwaggerParser.validate(structuredClone(doc) as never), 'a valid OpenAPI document (@apidevtools/swagger-parser)')
  t.equal(doc.openapi, '3.1.0')

  const listed = routes.filter((route) => route.method !== 'HEAD' && route.schema?.hide !== true)
  t.same(listed.map((r) => `${String(r.method)} ${r.url.replace(/:(\w+)/g, '{$1}')}`).sort(), operations(doc).map(([method, url]) => `${method} ${url}`).sort(), 'every route, and only routes')
  const ids = new Set<string>()
  for (const [method, url, op] of operations(doc)) {
    t.ok(op.summary !== undefined && op.operationId !== undefined && !ids.has(op.operationId), `${method} ${url}: a summary and a unique operationId`)
    ids.add(op.operationId ?? '')
    t.ok(op.tags?.length === 1 && Object.values<string>(Tags).includes(op.tags[0] as string), `${method} ${url}: one of the gateway's tags`)
    // Bearer security exactly where the route refuses a request without a token.
    const answer = await app.inject({ method: method as 'GET', url, ...(method === 'POST' ? { payload: {} } : {}) })
    const needsToken = answer.statusCode === 401 && answer.json().code === 'AUTH_TOKEN_MISSING'
    t.same(op.security, needsToken ? [{ wechatAuth: [] }] : undefined, `${method} ${url}: security ${needsToken ? 'bearer' : 'none'}`)
  }
  t.match(doc.components?.securitySchemes?.wechatAuth, { type: 'http', scheme: 'bearer' })
  t.same(doc.tags?.map((tag) => tag.name).sort(), Object.values(Tags).sort(), 'the gateway\'s tags, described')
  t.same(await app.inject('/auth/docs/json').then((r) => r.json()), doc, 'Swagger UI reads the same document')
  const ui = await app.inject('/auth/docs')
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /^text\/html/)
})

test('Swagger UI\'s file server: a path it refuses (.., %2e%2e, a NUL byte) is a coded 404', async (t) => {
  const { app } = await devGateway(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  // Sent as written: a client (curl --path-as-is, a scanner) need not resolve dot segments.
  const raw = async (path: string): Promise<{ status: number, body: { code?: string } }> => await new Promise((resolve, reject) => {
    request(`${base}${path}`, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk }).on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }) })
    }).on('error', reject).end()
  })
  for (const path of ['/auth/docs/static/../x', '/auth/docs/static/%2e%2e/x', '/auth/docs/static/%00']) {
    const res = await raw(path)
    t.same([res.status, res.body.code], [404, 'ROUTE_NOT_FOUND'], path)
  }
  t.equal((await app.inject('/auth/docs/static/swagger-ui.css')).statusCode, 200, 'its own files still served')
})

test('the document lists every error code of docs/http-api.md with its status, and no other', async (t) => {
  // H5 login on (it is off until its return pages are configured), so that its routes' codes are checked.
  const { app } = await devGateway(t, { config: { H5_RETURN_URLS: 'http://localhost:3000/' } })
  const doc = (await app.inject('/auth/openapi.json')).json<Document>()
  const documented = documentedCodes()
  t.ok(documented.size >= 30, `the docs' table of error codes is read (${documented.size} codes)`)
  // The admin API's codes are in its own document (its own listener, in the standalone server).
  const admin = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUST_PROXY: 'false' }))
  t.teardown(async () => await admin.close())
  await admin.register(wechatAuthAdmin, { sessions: app.wechatAuthSessions, token: ADMIN_TOKEN })
  const adminDoc = (await admin.inject({ url: '/admin/openapi.json', headers: bearer(ADMIN_TOKEN) })).json<Document>()
  const found = codesIn(doc)
  for (const [code, statuses] of codesIn(adminDoc)) found.set(code, new Set([...found.get(code) ?? [], ...statuses]))
  const served = new Set(operations(doc).map(([method, url]) => `${method} ${url}`))
  for (const [code, { status, routes }] of documented) {
    // A code no route answers yet, documented for routes the gateway does not serve yet (docs ahead of them).
    const ahead = !found.has(code) && routes.length > 0 && !routes.some((route) => served.has(route))
    t.ok(found.get(code)?.has(status), `${code} (${status}) is in the document`, ahead ? { todo: `${routes.join(', ')}: not served yet` } : {})
  }
  for (const [code, statuses] of found) t.same([...statuses], [documented.get(code)?.status], `${code}: the document's status is the docs'`)

  // Each status of a route names its codes, with an example of each; the errors every gateway route shares are there.
  for (const [method, url, op] of operations(doc).filter(([, url]) => url.startsWith('/auth/'))) {
    for (const [status, response] of Object.entries(op.responses).filter(([s]) => /^\d{3}$/.test(s) && Number(s) >= 400)) {
      const media = response.content?.['application/json'] as Media
      t.same(Object.keys(media.examples ?? {}), media.schema?.properties?.code?.enum, `${method} ${url} ${status}: an example of each code`)
    }
    t.ok(codesIn({ openapi: doc.openapi, paths: { [url]: { [method]: op } } }).has('INTERNAL_ERROR'), `${method} ${url}: INTERNAL_ERROR in its own 500`)
  }
  // A path parameter that does not decode (`/auth/qr/%zz`) is answered 400 FST_ERR_BAD_URL before the route.
  for (const [method, url, op] of [...operations(doc), ...operations(adminDoc)].filter(([, url]) => url.includes('{'))) {
    t.ok(codesIn({ openapi: doc.openapi, paths: { [url]: { [method]: op } } }).get('FST_ERR_BAD_URL')?.has(400), `${method} ${url}: FST_ERR_BAD_URL in its own 400`)
  }
  const bad = await app.inject('/auth/qr/%zz')
  t.same([bad.statusCode, bad.json().code], [400, 'FST_ERR_BAD_URL'], 'as answered')
})

test('bodies and examples match the behaviour, against the development simulator', async (t) => {
  const { app } = await devGateway(t)
  const doc = (await app.inject('/auth/openapi.json')).json<Document>()
  const body = (url: string) => doc.paths[url]?.post?.requestBody
  t.equal(body('/auth/logout')?.required, false, 'logout\'s body is optional')
  t.equal(body('/auth/login')?.required, true, 'login\'s is not')
  const example = (url: string) => body(url)?.content['application/json']?.example as Record<string, string>
  t.match(example('/auth/login'), { code: /^alice\.\d+$/ }, 'login codes of the development simulator')

  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: example('/auth/login') })
  t.equal(login.statusCode, 200, 'the login example logs in')
  const phone = await app.inject({ method: 'POST', url: '/auth/wechat/phone', headers: bearer(login.json().accessToken), payload: example('/auth/wechat/phone') })
  t.equal(phone.statusCode, 200, 'the phone-number example answers a number')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(login.json().accessToken), payload: example('/auth/logout') })
  t.equal(logout.statusCode, 204, 'the logout example logs out')
})

test('documenting adds no hook to the gateway\'s routes: nothing runs per request', async (t) => {
  const documented = await devGateway(t)
  const bare = await devGateway(t, { openapiPath: false, openapiUiPath: false })
  t.equal((await bare.app.inject('/auth/openapi.json')).json().code, 'ROUTE_NOT_FOUND', 'not served when turned off')
  t.notOk(bare.app.hasDecorator('wechatAuthOpenapi'), '@fastify/swagger is not even registered')
  for (const [method, url] of [['POST', '/auth/login'], ['GET', '/auth/me'], ['POST', '/auth/wechat/phone'], ['GET', '/health']]) {
    const hooks = hooksOf(documented.app, method as string, url as string)
    t.not(hooks, 'not found')
    t.equal(hooks, hooksOf(bare.app, method as string, url as string), `${method} ${url}: the same hooks`)
  }
})

test('production serves the document only where the host asks, and never the UI by default', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const config = { NODE_ENV: 'production', WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, JWT_SECRET, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix }
  const quiet = await devGateway(t, { config })
  for (const url of ['/auth/openapi.json', '/auth/docs', '/auth/docs/json']) {
    const res = await quiet.app.inject(url)
    t.equal(res.statusCode, 404, `${url}: not served`)
    t.equal(res.json().code, 'ROUTE_NOT_FOUND')
  }
  const asked = await devGateway(t, { config, openapiPath: '/openapi.json' })
  const res = await asked.app.inject('/openapi.json')
  t.equal(res.statusCode, 200)
  t.ok(res.json<Document>().paths['/auth/login'], 'the same document')
  t.equal((await asked.app.inject('/auth/docs')).json().code, 'ROUTE_NOT_FOUND', 'no UI unless asked')
})

test('a host that registered @fastify/swagger gets the gateway\'s routes in its own document', async (t) => {
  const host = Fastify()
  t.teardown(async () => await host.close())
  await host.register(swagger, { openapi: { info: { title: 'the host', version: '3.2.1' } } })
  host.get('/orders', { schema: { tags: ['orders'], summary: 'The host\'s own route' } }, async () => [])
  await host.register(wechatAuth, { env: false, config: { LOG_LEVEL: 'silent', WECHAT_SIMULATOR_PORT: 0, AUTH_PREFIX: '/api/wx' } })
  host.get('/invoices', { schema: { tags: ['invoices'] } }, async () => [])
  await host.ready()

  const doc = host.swagger() as unknown as Document
  await t.resolves(SwaggerParser.validate(structuredClone(doc) as never), 'still a valid document (OpenAPI 3.0, the host\'s)')
  t.equal(doc.openapi, '3.0.3')
  t.ok(doc.paths['/orders'] && doc.paths['/invoices'], 'the host\'s routes, before and after the gateway')
  t.same(doc.paths['/api/wx/login']?.post?.tags, [Tags.sessions], 'the gateway\'s, tagged')
  t.same(doc.paths['/api/wx/wechat/decrypt']?.post?.security, [{ wechatAuth: [] }])
  t.match(doc.components?.securitySchemes?.wechatAuth, { scheme: 'bearer' }, 'with their security scheme')
  t.ok(doc.tags?.some((tag) => tag.name === Tags.userData), 'and their tags')
  t.ok(codesIn(doc).has('ROUTE_NOT_FOUND'), 'and the codes no route answers')
  t.notOk(host.hasDecorator('wechatAuthOpenapi'), 'no second @fastify/swagger')
  t.equal((await host.inject('/api/wx/openapi.json')).json().code, 'ROUTE_NOT_FOUND', 'no document of the gateway\'s own')
  t.equal((await host.inject('/api/wx/docs')).json().code, 'ROUTE_NOT_FOUND', 'nor UI')
})

test('a host\'s Swagger 2.0 document lists the gateway\'s routes too, without their bearer scheme', async (t) => {
  const host = Fastify()
  t.teardown(async () => await host.close())
  await host.register(swagger, { swagger: { info: { title: 'the host', version: '1' } } })
  await host.register(wechatAuth, { env: false, config: { LOG_LEVEL: 'silent', WECHAT_SIMULATOR_PORT: 0 } })
  await host.ready()
  const doc = host.swagger() as unknown as { swagger: string, paths: Document['paths'] }
  t.equal(doc.swagger, '2.0')
  t.same(doc.paths['/auth/me']?.get?.tags, [Tags.sessions])
  t.equal(doc.paths['/auth/me']?.get?.security, undefined)
})

test('the gateway\'s own document leaves out a host\'s routes, and a host may add @fastify/swagger later', async (t) => {
  const host = Fastify()
  t.teardown(async () => await host.close())
  await host.register(wechatAuth, { env: false, config: { LOG_LEVEL: 'silent', WECHAT_SIMULATOR_PORT: 0 } })
  await host.register(swagger, { openapi: { info: { title: 'the host', version: '1' } } })
  host.get('/orders', { schema: { tags: ['orders'] } }, async () => [])
  await host.ready()
  const doc = (await host.inject('/auth/openapi.json')).json<Document>()
  t.notOk(doc.paths['/orders'], 'not the host\'s route')
  t.ok(doc.paths['/auth/login'])
  t.ok((host.swagger() as unknown as Document).paths['/orders'], 'the host\'s document has its own')
})

test('options are checked at boot', async (t) => {
  const boot = async (opts: Partial<WechatAuthOptions>, withSwagger = false): Promise<void> => {
    const app = Fastify()
    t.teardown(async () => await app.close())
    if (withSwagger) await app.register(swagger, { openapi: {} })
    await app.register(wechatAuth, { env: false, config: { LOG_LEVEL: 'silent', WECHAT_SIMULATOR_PORT: 0 }, ...opts })
    await app.ready()
  }
  await t.rejects(boot({ openapiPath: 'openapi.json' }), /openapiPath must be a path/)
  await t.rejects(boot({ openapiUiPath: '/a b' }), /openapiUiPath must be a path/)
  await t.rejects(boot({ openapiPath: '/openapi.json' }, true), /openapiPath and openapiUiPath: this app registered @fastify\/swagger/)
  await t.resolves(boot({ openapiPath: false }, true), 'false is no conflict')
})
