// The gateway's error handler: what it answers and how loudly it logs each kind of failure.
import { test } from 'tap'
import { errorHandler } from '../../http/error-handler.js'
import { RouteNotFoundError, StoreUnavailableError, WxTimeoutError } from '../../lib/errors.js'

function call (error: Error) {
  const lines: Array<{ level: string, obj: Record<string, unknown>, msg: string }> = []
  const log = Object.fromEntries(['error', 'warn', 'info', 'debug'].map((level) => [level, (obj: Record<string, unknown>, msg: string) => { lines.push({ level, obj, msg }) }]))
  let sent: { status: number, body: Record<string, unknown> } | undefined
  const reply = { code: (status: number) => ({ send: (body: Record<string, unknown>) => { sent = { status, body }; return reply } }) }
  errorHandler(error as never, { raw: { destroyed: false }, log } as never, reply as never)
  return { lines, sent }
}

test('WeChat or Redis failing is a warning without a stack; a bug is an error with one; a refusal is info', async (t) => {
  const timeout = call(new WxTimeoutError({ cause: new Error('headers timeout after 5000 ms') }))
  t.same(timeout.sent, { status: 504, body: { statusCode: 504, code: 'WX_TIMEOUT', error: 'Gateway Timeout', message: 'WeChat did not answer in time' } })
  t.same(timeout.lines.map((l) => l.level), ['warn'])
  t.same(timeout.lines[0]?.obj, { code: 'WX_TIMEOUT', statusCode: 504, cause: 'Error: headers timeout after 5000 ms' }, 'the code and the cause, no stack')
  t.same(call(new StoreUnavailableError()).lines.map((l) => [l.level, l.obj.code]), [['warn', 'STORE_UNAVAILABLE']])
  const bug = call(new TypeError('x is undefined'))
  t.same(bug.lines.map((l) => l.level), ['error'])
  t.ok((bug.lines[0]?.obj.err as Error).stack, 'a bug keeps its stack in the log')
  t.same(bug.sent?.body, { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal Server Error' }, 'never its message in the answer')
  const missing = call(new RouteNotFoundError('GET', '/nope'))
  t.same(missing.lines.map((l) => [l.level, l.obj]), [['info', { code: 'ROUTE_NOT_FOUND', statusCode: 404 }]], 'a 404 at info, no stack')
})
