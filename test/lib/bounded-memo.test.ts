// The hot paths' bounded memo (lib/bounded-memo.ts): first in, first out past its bound, for new
// keys only.
import { test } from 'tap'
import { remember } from '../../lib/bounded-memo.js'

test('a new key past the bound takes the place of the oldest', async (t) => {
  const memo = new Map<string, number>()
  for (const [i, k] of ['a', 'b', 'c'].entries()) t.equal(remember(memo, k, i, 3), i)
  remember(memo, 'd', 3, 3)
  t.same([...memo.keys()], ['b', 'c', 'd'])
})

test('a key already there is replaced where it stands, and nothing goes', async (t) => {
  const memo = new Map([['a', 0], ['b', 1], ['c', 2]])
  t.equal(remember(memo, 'a', 9, 3), 9)
  t.same([...memo], [['a', 9], ['b', 1], ['c', 2]])
})
