import { test } from 'tap'
import { parseTrustProxy, serverOptions } from '../../http/server-options.js'

test('TRUST_PROXY accepts booleans, hop counts and address lists', async (t) => {
  t.equal(parseTrustProxy('true'), true)
  t.equal(parseTrustProxy('false'), false)
  t.equal(parseTrustProxy(''), false)
  t.same(parseTrustProxy('10.0.0.1, 10.0.0.0/8'), ['10.0.0.1', '10.0.0.0/8'])
  const hops = parseTrustProxy('2')
  t.type(hops, 'function')
  if (typeof hops === 'function') {
    t.equal(hops('1.1.1.1', 0), true)
    t.equal(hops('1.1.1.1', 1), true)
    t.equal(hops('1.1.1.1', 2), false)
  }
})

test('server options redact credentials from logs and refuse unknown body properties', async (t) => {
  const o = serverOptions({ LOG_LEVEL: 'info', TRUST_PROXY: 'false' })
  t.match(o.logger, { level: 'info', redact: { paths: ['req.headers.authorization'] } })
  t.match(o.ajv, { customOptions: { removeAdditional: false } })
})
