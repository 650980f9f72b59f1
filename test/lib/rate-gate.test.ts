// A request's rate limit waited for along the flow's first store command (lib/rate-gate.ts).
import { test } from 'tap'
import { alongGate } from '../../lib/rate-gate.js'

test('a gate refused while the operation still runs: the refusal wins, what was done is undone, nothing unhandled', async (t) => {
  const unhandled: unknown[] = []
  const listener = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', listener)
  t.teardown(() => { process.off('unhandledRejection', listener) })
  const gate = Promise.reject(new Error('RATE_LIMITED')) // nobody caught it: alongGate must
  let undone: string | undefined
  const op = new Promise<string>((resolve) => setTimeout(() => resolve('claimed'), 50))
  await t.rejects(alongGate(gate, op, (done) => { undone = done }), { message: 'RATE_LIMITED' })
  await new Promise((resolve) => setImmediate(resolve))
  t.same(unhandled, [], 'no unhandled rejection while the operation ran')
  t.equal(undone, 'claimed')
  t.equal(await alongGate(undefined, Promise.resolve('alone')), 'alone', 'without a gate, the operation\'s result')
})
