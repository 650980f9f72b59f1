// The store's deadlines (lib/store/deadlines.ts): every failure of an operation is STORE_UNAVAILABLE,
// whether it rejects, throws before its first await, or outlives its deadline.
import { test } from 'tap'
import { createDeadlines } from '../../../lib/store/deadlines.js'

test('an operation that throws before its first await fails at once with STORE_UNAVAILABLE, and is not left pending', async (t) => {
  const deadlines = createDeadlines(200)
  t.teardown(deadlines.stop)
  const op = (): Promise<string> => { throw new TypeError('Do not know how to serialize a BigInt') }
  const err = await deadlines.guard(op).catch((e: unknown) => e) as Error & { code?: string }
  t.equal(err.code, 'STORE_UNAVAILABLE')
  t.equal((err.cause as Error).message, 'TypeError: Do not know how to serialize a BigInt', 'the cause keeps the name and message only')
  const started = Date.now()
  await deadlines.drain()
  t.ok(Date.now() - started < 200, `drain does not wait for it (${Date.now() - started} ms; the deadline is 200)`)
})

test('a rejection is STORE_UNAVAILABLE; an operation past its deadline too, and its late result goes to onLate', async (t) => {
  const deadlines = createDeadlines(100)
  t.teardown(deadlines.stop)
  await t.rejects(deadlines.guard(async () => { throw new Error('READONLY You can\'t write against a read only replica.') }), { code: 'STORE_UNAVAILABLE' })
  let late: string | undefined
  const slow = deadlines.guard(async () => await new Promise<string>((resolve) => setTimeout(() => resolve('written'), 250)), (value) => { late = value })
  await t.rejects(slow, { code: 'STORE_UNAVAILABLE' })
  await new Promise((resolve) => setTimeout(resolve, 250))
  t.equal(late, 'written', 'what still happened is handed back to be undone')
  t.equal(await deadlines.guard(async () => 'ok'), 'ok')
})
