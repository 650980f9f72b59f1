// The gateway's coded errors (lib/errors.ts): expected outcomes, made without a stack; ConfigError,
// raised at boot, keeps one, as any error without a code (a bug) does.
import { test } from 'tap'
import * as errors from '../../lib/errors.js'

test('a coded error carries its code, status and message, and no captured stack', async (t) => {
  const constructors = Object.entries(errors).filter(([name, value]) => typeof value === 'function' && name.endsWith('Error') && name !== 'ConfigError')
  t.ok(constructors.length > 50, `${constructors.length} coded errors`)
  for (const [name, Make] of constructors) {
    const err = new (Make as new (...args: unknown[]) => Error & { code: string, statusCode: number })('x', 'y')
    t.ok(err instanceof Error, `${name} is an Error`)
    t.match(err, { code: /^[A-Z][A-Z0-9]*_[A-Z0-9_]+$|^[A-Z]+_[A-Z]+$/, statusCode: Number }, `${name} has a code and a status`)
    t.notMatch(err.stack ?? '', /\n\s+at /, `${name}: no stack frames`)
  }
  const timeout = new errors.WxTimeoutError({ cause: new Error('headers timeout') })
  t.match((timeout.cause as Error).stack, /\n\s+at /, 'a cause keeps its own stack')
})

test('ConfigError, raised at boot, keeps its stack; so does a bug', async (t) => {
  t.match(new errors.ConfigError('x').stack, /\n\s+at /)
  t.match(new TypeError('x is undefined').stack, /\n\s+at /)
})
