import { EventEmitter, once } from 'node:events'
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

// Reads check expiry themselves, so an expired entry looks the same whether the sweep removed it
// or not. Turning the clock back tells them apart: an entry still held is live again, a swept one
// is gone. Every kind of entry has an expired and a live one, so a sweep that removes nothing,
// or too much, fails here.
test('expired entries are swept in the background, live ones are kept', async (t) => {
  let now = 0
  const sweeps = new EventEmitter()
  const store = createMemoryStore({ now: () => now, sweepMs: 5, onSweep: () => sweeps.emit('sweep') })
  t.teardown(async () => await store.close())
  const session = { sub: 'x', openid: 'o', sessionKey: 'k' }
  const [expired, live] = [{ tag: 't', sid: 'expired' }, { tag: 't', sid: 'live' }]
  await store.createSession(expired, session, 'h', 1)
  await store.createSession(live, session, 'h', 60)
  await store.claimCode('expired', 1_000)
  await store.claimCode('live', 60_000)
  await store.hit('expired', 1_000)
  await store.hit('live', 60_000)
  await store.lockCredential('expired', 'a', 1_000)
  await store.lockCredential('live', 'a', 60_000)
  await store.saveCredential('expired', { value: 'v', expiresAt: 1_000, refreshAt: 500 }, 'nobody')
  await store.saveCredential('live', { value: 'v', expiresAt: 60_000, refreshAt: 30_000 }, 'nobody')

  now = 5_000
  // The next sweep runs with the clock past the expired entries. Its timer is unref'd: the
  // deadline's keeps the process up, and fails the test if no sweep ever comes.
  const ac = new AbortController()
  const deadline = setTimeout(() => ac.abort(new Error('no background sweep within 5 s')), 5_000)
  await once(sweeps, 'sweep', { signal: ac.signal }).finally(() => clearTimeout(deadline))
  now = 0

  t.equal(await store.getSession(expired), null, 'expired session swept')
  t.match(await store.getSession(live), session, 'live session kept')
  t.equal(await store.claimCode('expired', 1_000), 'claimed', 'expired code marker swept')
  t.equal(await store.claimCode('live', 1_000), 'pending', 'live code marker kept')
  t.match(await store.hit('expired', 1_000), { current: 1 }, 'expired rate-limit window swept')
  t.match(await store.hit('live', 1_000), { current: 2 }, 'live rate-limit window kept')
  t.equal(await store.lockCredential('expired', 'b', 1_000), true, 'expired lock swept')
  t.equal(await store.lockCredential('live', 'b', 1_000), false, 'live lock kept')
  t.equal(await store.getCredential('expired'), null, 'expired credential swept')
  t.match(await store.getCredential('live'), { value: 'v' }, 'live credential kept')
})
