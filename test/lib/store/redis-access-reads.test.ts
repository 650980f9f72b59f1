// The read copy's memory (lib/store/redis-access-reads.ts): at most N replies, the users that go are
// the ones not read since they were last passed over (a second chance), a user's own excess goes last.
import { test } from 'tap'
import { boundedReads } from '../../../lib/store/redis-access-reads.js'

const reply = (v: string): Array<string | null> => [v, null]

test('at most N replies; a user read since it was kept is passed over once, an unread one goes', async (t) => {
  const reads = boundedReads(3)
  for (const user of ['a', 'b', 'c']) reads.keep(user, 'j', reply(user))
  t.equal(reads.size, 3)
  t.same(reads.get('a', 'j'), reply('a'), 'a is read: its second chance')
  reads.keep('d', 'j', reply('d'))
  t.equal(reads.size, 3)
  t.same(reads.get('a', 'j'), reply('a'), 'a was passed over')
  t.equal(reads.get('b', 'j'), undefined, 'b, the oldest not read, went')
  t.same(reads.get('c', 'j'), reply('c'))
  t.same(reads.get('d', 'j'), reply('d'), 'the reply just kept stays')
  // Now c, d, a, in that order, all read: each is passed over once, then c, the oldest, goes.
  reads.keep('e', 'j', reply('e'))
  t.equal(reads.size, 3, 'every user read: the oldest goes once each had its chance')
  t.equal(reads.get('c', 'j'), undefined, 'c went')
  t.same(reads.get('a', 'j'), reply('a'), 'a stayed')
  t.same(reads.get('d', 'j'), reply('d'), 'd stayed')
  t.same(reads.get('e', 'j'), reply('e'))
})

test('the reply kept stays while other users can go, though all were read', async (t) => {
  const reads = boundedReads(2)
  reads.keep('a', 'j', reply('a'))
  reads.keep('b', 'j', reply('b'))
  reads.get('a', 'j')
  reads.get('b', 'j')
  reads.keep('c', 'j1', reply('c1'))
  t.same(reads.get('c', 'j1'), reply('c1'), 'kept')
  t.equal(reads.size, 2)
})

test('one user\'s many replies: its oldest go; drop and clear', async (t) => {
  const reads = boundedReads(3)
  reads.keep('o', 'j', reply('o'))
  for (let i = 0; i < 5; i++) reads.keep('u', `j${i}`, reply(String(i)))
  t.equal(reads.size, 3)
  t.equal(reads.get('o', 'j'), undefined, 'another user first')
  t.equal(reads.get('u', 'j1'), undefined, 'then its own oldest')
  t.same(reads.get('u', 'j4'), reply('4'))
  reads.keep('u', 'j4', reply('again'))
  t.equal(reads.size, 3, 'a reply kept again is counted once')
  reads.drop('u')
  t.equal(reads.size, 0)
  reads.keep('v', 'j', reply('v'))
  reads.clear()
  t.equal(reads.size, 0)
  t.equal(reads.get('v', 'j'), undefined)
})
