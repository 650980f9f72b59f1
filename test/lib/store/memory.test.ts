import { test } from 'tap'
import { createMemoryStore } from '../../../lib/store/memory.js'
import { storeContract } from './contract.js'

test('memory store honours the store contract', async (t) => {
  storeContract(t, async (t) => {
    let now = Date.now()
    const store = createMemoryStore({ now: () => now, sweepMs: 10 })
    t.teardown(async () => await store.close())
    return { store, advance: async (ms) => { now += ms } }
  })
})

test('expired entries are swept in the background', async (t) => {
  let now = 0
  const store = createMemoryStore({ now: () => now, sweepMs: 5 })
  t.teardown(async () => await store.close())
  await store.createSession({ tag: 't', sid: 's' }, { sub: 'x', openid: 'o', sessionKey: 'k' }, 'h', 1)
  await store.hit('ip', 1000)
  await store.blacklist({ tag: 't', sid: 's' }, 'j', 1)
  await store.claimCode('c', 1000)
  now = 5000
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.equal(await store.getSession({ tag: 't', sid: 's' }), null)
  t.equal(await store.claimCode('c', 1000), 'claimed')
  t.equal(store.kind, 'memory')
})
