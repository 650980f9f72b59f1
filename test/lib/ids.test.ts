// lib/ids.ts: a user's tag is the same whether it is computed or remembered, past the memo's bound
// too, and differs between mini programs.
import { test } from 'tap'
import { digest, userTag } from '../../lib/ids.js'

const expected = (appid: string, sub: string): string => digest(`${appid}\u0000${sub}`).slice(0, 16)

test('userTag: the digest of appid and sub, remembered or not, across more users than the memo keeps', async (t) => {
  const apps = ['wxaaaaaaaaaaaaaaaa', 'wxbbbbbbbbbbbbbbbb']
  const wrong: string[] = []
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 12_000; i++) {
      const appid = apps[i % 2] as string
      const sub = `user-${i % 6_500}`
      if (userTag(appid, sub) !== expected(appid, sub)) wrong.push(`${appid} ${sub}`)
    }
  }
  t.same(wrong, [], 'every tag as computed, before and after the memo was cleared')
  t.not(userTag(apps[0] as string, 'same'), userTag(apps[1] as string, 'same'), 'one sub in two mini programs: two users')
})
