import { test } from 'tap'
import { throttledWarning } from '../../lib/throttled-warning.js'

test('a throttled warning: the first at once, then at most every everyMs, counting the weights between, with the latest arguments', async (t) => {
  const lines: Array<[number, string]> = []
  const warn = throttledWarning(60_000, (count, what: string) => { lines.push([count, what]) })
  warn(2, 'a')
  warn(3, 'b')
  warn(1, 'c')
  t.same(lines, [[2, 'a']], 'the first at once; the next two wait')
  const every = throttledWarning(0, (count, what: string) => { lines.push([count, what]) })
  every(1, 'x')
  every(4, 'y')
  t.same(lines.slice(1), [[1, 'x'], [4, 'y']], 'the count restarts after each warning')
})
