// A Postman collection (v2.1) generated from the gateway's OpenAPI document, to debug against the
// development gateway: `npm run postman [-- <file>]`. The requests (method, path, auth, bodies) come
// from the document; what makes them run in order (keeping the tokens, a fresh login code, user data
// from the simulator, what to expect after logout) is FLOW below, by operationId, and generating fails
// when the document no longer has an operation or a body field FLOW names. test/postman.test.ts runs
// the collection with newman against the development gateway, so neither can drift.
import { writeFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import SwaggerParser from '@apidevtools/swagger-parser'
import Fastify from 'fastify'
import wechatAuth from '../app.js'

type Schema = { properties?: Record<string, unknown>, anyOf?: Schema[] }
type Media = { schema?: Schema, example?: unknown }
interface Operation {
  operationId?: string
  summary?: string
  security?: unknown[]
  requestBody?: { required?: boolean, content?: Record<string, Media> }
  responses?: Record<string, { content?: Record<string, Media> }>
}
export interface OpenApiDocument { info: { title: string, description?: string }, paths: Record<string, Record<string, Operation>> }

interface Step {
  operationId: string
  /** The item's name, when not the operation's summary. */
  name?: string
  /** The body, `{{variables}}` included; without it, the document's example (if the body is required). */
  body?: Record<string, string>
  prerequest?: string[]
  tests?: string[]
  /** An error expected instead of the operation's success. */
  error?: { status: number, code: string }
}

const keepTokens = [
  'const pair = pm.response.json()',
  'pm.collectionVariables.set(\'accessToken\', pair.accessToken)',
  'pm.collectionVariables.set(\'refreshToken\', pair.refreshToken)'
]
// The simulator's POST /dev/encrypt: what wx.getUserInfo would hand the user, under its session_key.
const userDataFromSimulator = [
  'pm.sendRequest({',
  '  url: pm.variables.get(\'simulatorUrl\') + \'/dev/encrypt?user=\' + encodeURIComponent(pm.variables.get(\'user\')),',
  '  method: \'POST\',',
  '  header: { \'content-type\': \'application/json\' },',
  '  body: { mode: \'raw\', raw: JSON.stringify({ nickName: \'Alice\' }) }',
  '}, (err, res) => {',
  '  if (err || res.code !== 200) throw new Error(\'the simulator at {{simulatorUrl}} made no user data: \' + (err || res.text()))',
  '  const data = res.json()',
  '  // Escaped, to go inside the JSON strings of the bodies (rawData is JSON text).',
  '  for (const key of [\'encryptedData\', \'iv\', \'rawData\', \'signature\']) pm.collectionVariables.set(key, JSON.stringify(data[key]).slice(1, -1))',
  '})'
]

/** The order a run follows. Operations it does not name run before logout, with their example bodies. */
export const FLOW: Step[] = [
  // A Postman dynamic value makes each login code new: the simulator takes `<user>.<anything>` once.
  { operationId: 'login', body: { code: '{{user}}.{{$guid}}' }, tests: keepTokens },
  { operationId: 'me' },
  { operationId: 'refresh', body: { refreshToken: '{{refreshToken}}' }, tests: keepTokens },
  {
    operationId: 'decryptUserData',
    prerequest: userDataFromSimulator,
    body: { encryptedData: '{{encryptedData}}', iv: '{{iv}}' },
    tests: ['pm.test(\'decrypted\', () => pm.expect(pm.response.json().nickName).to.equal(\'Alice\'))']
  },
  { operationId: 'verifyUserSignature', body: { rawData: '{{rawData}}', signature: '{{signature}}' } },
  { operationId: 'getPhoneNumber', body: { code: '{{user}}.p{{$guid}}' } },
  // Step-up takes a fresh code of the same user, as login does; forward auth answers with the caller.
  { operationId: 'stepUp', body: { code: '{{user}}.{{$guid}}' } },
  { operationId: 'verify', tests: ['pm.test(\'names the caller\', () => pm.expect(pm.response.headers.get(\'x-auth-request-user\')).to.be.a(\'string\'))'] },
  // A one-time ticket of this user, exchanged once for a `web` session (the tokens kept are still this session's).
  { operationId: 'issueTicket', body: { deviceType: 'web' }, tests: ['pm.collectionVariables.set(\'ticket\', pm.response.json().ticket)'] },
  { operationId: 'exchangeTicket', body: { ticket: '{{ticket}}' } },
  // A web QR login: made by the web page, scanned and confirmed by this session, followed, collected once.
  { operationId: 'createQrLogin', tests: ['pm.collectionVariables.set(\'id\', pm.response.json().id)', 'pm.collectionVariables.set(\'secret\', pm.response.json().secret)'] },
  { operationId: 'qrLoginImage', tests: ['pm.test(\'a PNG\', () => pm.expect(pm.response.headers.get(\'content-type\')).to.equal(\'image/png\'))'] },
  { operationId: 'scanQrLogin' },
  { operationId: 'confirmQrLogin' },
  { operationId: 'qrLoginStatus', tests: ['pm.test(\'confirmed\', () => pm.expect(pm.response.json().state).to.equal(\'confirmed\'))'] },
  { operationId: 'qrLoginEvents', tests: ['pm.test(\'ends confirmed\', () => pm.expect(pm.response.text()).to.include(\'"state":"confirmed"\'))'] },
  { operationId: 'collectQrLogin', body: { secret: '{{secret}}' } },
  { operationId: 'cancelQrLogin', name: 'Cancel the web QR login, after its confirm (409)', error: { status: 409, code: 'AUTH_QR_STATE' } },
  // A second session of the user, then ended from this one: the tokens kept are this session's.
  { operationId: 'login', name: 'Log in on a second device', body: { code: '{{user}}.{{$guid}}', deviceName: 'second device' } },
  { operationId: 'listSessions', tests: ['pm.collectionVariables.set(\'sid\', pm.response.json().sessions.find((s) => !s.current).sessionId)'] },
  { operationId: 'endSession' },
  { operationId: 'logout' },
  { operationId: 'me', name: 'Who am I, after logout (401)', error: { status: 401, code: 'AUTH_TOKEN_REVOKED' } }
]

const json = (media: Record<string, Media> | undefined): Media | undefined => media?.['application/json']
const fieldsOf = (schema: Schema | undefined): string[] =>
  [...Object.keys(schema?.properties ?? {}), ...(schema?.anyOf ?? []).flatMap(fieldsOf)]

function itemOf (step: Step, method: string, path: string, op: Operation) {
  const [status, response] = step.error !== undefined
    ? [String(step.error.status), op.responses?.[step.error.status]]
    : Object.entries(op.responses ?? {}).find(([s]) => /^2\d\d$/.test(s)) ?? []
  const schema = json(response?.content)?.schema
  if (status === undefined || (step.error !== undefined && !JSON.stringify(schema ?? {}).includes(`"${step.error.code}"`))) {
    throw new Error(`${step.operationId}: the document gives no ${step.error?.code ?? 'success'} response`)
  }
  const unknown = Object.keys(step.body ?? {}).filter((field) => !fieldsOf(json(op.requestBody?.content)?.schema).includes(field))
  if (unknown.length > 0) throw new Error(`${step.operationId}: the document's body has no ${unknown.join(', ')}`)
  const body = step.body ?? (op.requestBody?.required === true ? json(op.requestBody.content)?.example ?? {} : undefined)
  const tests = [
    `pm.test('answers ${status}', () => pm.response.to.have.status(${status}))`,
    ...(schema !== undefined ? [`pm.test('as documented', () => pm.response.to.have.jsonSchema(${JSON.stringify(schema)}))`] : []),
    ...(step.error !== undefined ? [`pm.test('${step.error.code}', () => pm.expect(pm.response.json().code).to.equal('${step.error.code}'))`] : []),
    ...(step.tests ?? [])
  ]
  const segments = path.split('/').filter((s) => s !== '').map((s) => s.replace(/^\{(\w+)\}$/, ':$1'))
  return {
    name: step.name ?? op.summary ?? step.operationId,
    event: [
      ...(step.prerequest !== undefined ? [{ listen: 'prerequest', script: { type: 'text/javascript', exec: step.prerequest } }] : []),
      { listen: 'test', script: { type: 'text/javascript', exec: tests } }
    ],
    request: {
      method: method.toUpperCase(),
      // Public routes send no token; the others use the collection's bearer auth.
      ...((op.security ?? []).length === 0 ? { auth: { type: 'noauth' } } : {}),
      header: body === undefined ? [] : [{ key: 'content-type', value: 'application/json' }],
      url: {
        raw: `{{baseUrl}}/${segments.join('/')}`,
        host: ['{{baseUrl}}'],
        path: segments,
        variable: segments.filter((s) => s.startsWith(':')).map((s) => ({ key: s.slice(1), value: `{{${s.slice(1)}}}` }))
      },
      ...(body !== undefined ? { body: { mode: 'raw', raw: JSON.stringify(body, null, 2), options: { raw: { language: 'json' } } } } : {})
    }
  }
}

export interface CollectionOptions {
  /** Where the gateway and its simulator answer (`npm start`: 3000 and 3001). */
  baseUrl?: string
  simulatorUrl?: string
}

/** The collection for an OpenAPI document, validated first (@apidevtools/swagger-parser). */
export async function toPostmanCollection (document: OpenApiDocument, opts: CollectionOptions = {}) {
  // swagger-parser types its input and output with openapi-types, which this script does not depend on:
  // the document is checked at run time by validate() itself, and read back through our narrower shape.
  const doc = await SwaggerParser.validate(structuredClone(document) as never) as unknown as OpenApiDocument
  const operations = new Map(Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => [op.operationId ?? `${method} ${path}`, { method, path, op }] as const)))
  const named = new Set(FLOW.map((step) => step.operationId))
  const others = [...operations.keys()].filter((id) => !named.has(id)).map((operationId) => ({ operationId }))
  const logout = FLOW.findIndex((step) => step.operationId === 'logout')
  const steps = [...FLOW.slice(0, logout), ...others, ...FLOW.slice(logout)]
  return {
    info: {
      name: doc.info.title,
      description: `Generated from the gateway's OpenAPI document by scripts/postman.ts (npm run postman). ${doc.info.description ?? ''}`,
      schema: 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json'
    },
    auth: { type: 'bearer', bearer: [{ key: 'token', value: '{{accessToken}}', type: 'string' }] },
    variable: [
      { key: 'baseUrl', value: opts.baseUrl ?? 'http://127.0.0.1:3000' },
      { key: 'simulatorUrl', value: opts.simulatorUrl ?? 'http://127.0.0.1:3001' },
      { key: 'user', value: 'alice' },
      { key: 'accessToken', value: '' },
      { key: 'refreshToken', value: '' }
    ],
    item: steps.map((step) => {
      const found = operations.get(step.operationId)
      if (found === undefined) throw new Error(`${step.operationId}: no such operation in the document`)
      return itemOf(step, found.method, found.path, found.op)
    })
  }
}

/** `npm run postman [-- <file>]`: the document of a development gateway (not listening), as a collection. */
export async function main (argv: string[]): Promise<string> {
  const file = argv[0] ?? 'fastify-wechat-auth.postman_collection.json'
  const app = Fastify()
  try {
    await app.register(wechatAuth, { env: false, config: { LOG_LEVEL: 'silent', WECHAT_SIMULATOR_PORT: 0 } })
    const document = (await app.inject(`${app.wechatAuthConfig.AUTH_PREFIX}/openapi.json`)).json<OpenApiDocument>()
    await writeFile(file, `${JSON.stringify(await toPostmanCollection(document), null, 2)}\n`)
  } finally {
    await app.close()
  }
  return file
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = await main(process.argv.slice(2))
  process.stdout.write(`${file}: import it into Postman, or run it against \`npm start\`: npx newman run ${file}\n`)
}
