// The Postman collection is generated from the OpenAPI document (scripts/postman.ts) and newman runs it
// against the development gateway, listening on a real port with its built-in simulator: login, me,
// refresh, the WeChat user-data routes, the others, logout, and me refused after it.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify from 'fastify'
import newman, { type NewmanRunOptions, type NewmanRunSummary } from 'newman'
import { test } from 'tap'
import wechatAuth from '../app.js'
import { serverOptions } from '../http/server-options.js'
import { FLOW, main, toPostmanCollection, type OpenApiDocument } from '../scripts/postman.js'

const run = async (options: NewmanRunOptions): Promise<NewmanRunSummary> =>
  await new Promise((resolve, reject) => { newman.run(options, (err, summary) => { if (err !== null) reject(err); else resolve(summary) }) })

async function devGateway (t: { teardown: (fn: () => unknown) => void }) {
  const app = Fastify(serverOptions({ LOG_LEVEL: 'silent', TRUST_PROXY: 'false' }))
  t.teardown(async () => await app.close())
  await app.register(wechatAuth, { env: false, config: { LOG_LEVEL: 'silent', WECHAT_SIMULATOR_PORT: 0 } })
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const document = await (await fetch(`${baseUrl}/auth/openapi.json`)).json() as OpenApiDocument
  return { app, baseUrl, document }
}

test('newman runs the generated collection green against the development gateway', async (t) => {
  const { app, baseUrl, document } = await devGateway(t)
  const file = join(t.testdir(), 'collection.json')
  await main([file])
  const collection = JSON.parse(await readFile(file, 'utf8'))
  t.same(collection, await toPostmanCollection(document), '`npm run postman` writes the collection of the gateway\'s document')

  const summary = await run({
    collection,
    envVar: [{ key: 'baseUrl', value: baseUrl }, { key: 'simulatorUrl', value: app.wechatAuthSimulator.url }],
    timeoutRequest: 10_000
  })
  t.same(summary.run.failures.map((f) => `${f.source?.name ?? ''}: ${f.error.message}`), [], 'no failure')
  // One execution per item (newman lists an item again for each request its scripts send).
  const executions = [...new Set(summary.run.executions)]
  const answers = executions.map((e) => `${e.request.method} ${e.request.url.getPath().replace(/^\/auth\/sessions\/[\w-]{12}$/, '/auth/sessions/<sid>').replace(/^\/auth\/qr\/[\w-]{22}/, '/auth/qr/<id>')} ${(e.response as unknown as { code: number }).code}`)
  t.same(answers, [
    'POST /auth/login 200', 'GET /auth/me 200', 'POST /auth/refresh 200',
    'POST /auth/wechat/decrypt 200', 'POST /auth/wechat/verify-signature 204', 'POST /auth/wechat/phone 200',
    'POST /auth/step-up 200', 'GET /auth/verify 200', 'POST /auth/tickets 200', 'POST /auth/tickets/exchange 200',
    'POST /auth/qr 200', 'GET /auth/qr/<id>/image 200', 'POST /auth/qr/<id>/scan 200', 'POST /auth/qr/<id>/confirm 200', 'GET /auth/qr/<id> 200', 'GET /auth/qr/<id>/events 200', 'POST /auth/qr/<id>/token 200', 'POST /auth/qr/<id>/cancel 409',
    'POST /auth/login 200', 'GET /auth/sessions 200', 'DELETE /auth/sessions/<sid> 204',
    'GET /health/live 200', 'GET /health 200', 'POST /auth/logout 204', 'GET /auth/me 401'
  ], 'login, me, refresh, the WeChat data, step-up, forward auth, a ticket exchanged, a web QR login, a second session ended, the other routes, logout, me refused')
  const assertions = executions.flatMap((e) => (e as unknown as { assertions?: Array<{ error?: unknown }> }).assertions ?? [])
  t.ok(assertions.length >= 20 && assertions.every((a) => a.error === undefined), `every assertion holds (${assertions.length})`)
})

test('the collection: collection-wide bearer auth from the stored token, public routes without, a fresh code per login', async (t) => {
  const { document } = await devGateway(t)
  const collection = await toPostmanCollection(document, { baseUrl: 'http://gw:3000' })
  t.match(collection.auth, { type: 'bearer', bearer: [{ key: 'token', value: '{{accessToken}}' }] })
  t.match(collection.variable, [{ key: 'baseUrl', value: 'http://gw:3000' }, { key: 'simulatorUrl' }, { key: 'user', value: 'alice' }])
  const [login, me] = collection.item
  t.same(login?.request.auth, { type: 'noauth' }, 'login sends no token')
  t.equal(me?.request.auth, undefined, 'me uses the collection\'s')
  t.match(JSON.parse(login?.request.body?.raw ?? '{}'), { code: '{{user}}.{{$guid}}' }, 'a Postman dynamic value makes each code new')
  t.match(login?.event.find((e) => e.listen === 'test')?.script.exec.join('\n'), /pm\.collectionVariables\.set\('accessToken', pair\.accessToken\)/)
  const logout = collection.item.find((item) => item.request.url.raw === '{{baseUrl}}/auth/logout')
  t.equal(logout?.request.body, undefined, 'logout without a body, as the document allows')
})

test('generating fails when the document no longer has what the flow names', async (t) => {
  const { document } = await devGateway(t)
  const without = structuredClone(document)
  delete without.paths['/auth/refresh']
  await t.rejects(toPostmanCollection(without), /refresh: no such operation in the document/)
  const renamed = structuredClone(document)
  const body = renamed.paths['/auth/login']?.post?.requestBody?.content?.['application/json']?.schema
  if (body?.properties !== undefined) body.properties = { js_code: body.properties.code }
  await t.rejects(toPostmanCollection(renamed), /login: the document's body has no code/)
  const noError = structuredClone(document)
  delete noError.paths['/auth/me']?.get?.responses?.['401']
  await t.rejects(toPostmanCollection(noError), /me: the document gives no AUTH_TOKEN_REVOKED response/)
  t.ok(FLOW.some((step) => step.error !== undefined), 'the flow expects an error')
})
