import { setTimeout as sleep } from 'node:timers/promises'
import { test, type Test } from 'tap'
import { createAccessTokenManager, renewalTimes, EXPIRY_MARGIN_MS } from '../../lib/wechat-access-token.js'
import { WxAccessTokenRejectedError, WxUnavailableError } from '../../lib/errors.js'
import { createMemoryStore } from '../../lib/store/memory.js'
import type { SessionStore } from '../../lib/store/types.js'

interface Upstream {
  calls: number
  fetch: () => Promise<{ accessToken: string, expiresIn: number }>
  /** The next answers' behaviour. */
  expiresIn: number
  /** Answer this token instead of a new one. */
  same: string | null
  delayMs: number
  fail: Error | null
}

function upstream (): Upstream {
  const u: Upstream = {
    calls: 0,
    expiresIn: 7200,
    delayMs: 0,
    fail: null,
    same: null,
    fetch: async () => {
      const n = ++u.calls
      if (u.delayMs > 0) await sleep(u.delayMs)
      if (u.fail !== null) throw u.fail
      if (u.same !== null) return { accessToken: u.same, expiresIn: u.expiresIn }
      return { accessToken: `token-${n}-${'x'.repeat(20)}`, expiresIn: u.expiresIn }
    }
  }
  return u
}

function logs (): { lines: Array<{ level: string, obj: object }>, log: { warn: (o: object) => void, info: (o: object) => void } } {
  const lines: Array<{ level: string, obj: object }> = []
  return { lines, log: { warn: (obj) => lines.push({ level: 'warn', obj }), info: (obj) => lines.push({ level: 'info', obj }) } }
}

function setup (t: Test, opts: { store?: SessionStore, up?: Upstream, clock?: { now: number } } = {}) {
  const clock = opts.clock ?? { now: 1_700_000_000_000 }
  const store = opts.store ?? createMemoryStore({ now: () => clock.now })
  if (opts.store === undefined) t.teardown(async () => await store.close())
  const up = opts.up ?? upstream()
  const { lines, log } = logs()
  const manager = createAccessTokenManager({ name: 'wx0123456789abcdef', store, fetch: up.fetch, timeoutMs: 300, storeTimeoutMs: 50, log: log as never, now: () => clock.now })
  return { manager, store, up, clock, lines }
}

test('renewalTimes: 5 minutes ahead, or half-way for a short-lived token', async (t) => {
  t.same(renewalTimes(0, 7200), { expiresAt: 7_200_000, refreshAt: 6_900_000 })
  t.same(renewalTimes(1000, 400), { expiresAt: 401_000, refreshAt: 201_000 })
})

test('one fetch serves every caller; concurrent callers share it', async (t) => {
  const { manager, up } = setup(t)
  up.delayMs = 20
  const tokens = await Promise.all(Array.from({ length: 100 }, async () => await manager.get()))
  t.equal(up.calls, 1, 'one upstream call for 100 concurrent callers')
  t.equal(new Set(tokens).size, 1)
  t.equal(await manager.get(), tokens[0], 'then served from memory')
  t.equal(up.calls, 1)
})

test('renewed ahead of expiry in the background; the current token is served meanwhile', async (t) => {
  const { manager, up, clock } = setup(t)
  const first = await manager.get()
  clock.now += (7200 - 300) * 1000 // due, still valid
  up.delayMs = 20
  t.equal(await manager.get(), first, 'no waiting: the current token while renewing')
  t.equal(await manager.get(), first)
  await sleep(60)
  t.equal(up.calls, 2, 'one renewal')
  t.not(await manager.get(), first, 'the renewed token afterwards')
})

test('a token in its last seconds is not handed out: callers wait for the renewal', async (t) => {
  const { manager, up, clock } = setup(t)
  const first = await manager.get()
  clock.now += 7200 * 1000 - EXPIRY_MARGIN_MS
  const next = await manager.get()
  t.not(next, first)
  t.equal(up.calls, 2)
})

test('two instances sharing a store make one upstream call between them', async (t) => {
  const clock = { now: 1_700_000_000_000 }
  const store = createMemoryStore({ now: () => clock.now })
  t.teardown(async () => await store.close())
  const up = upstream()
  up.delayMs = 50
  const a = setup(t, { store, up, clock })
  const b = setup(t, { store, up, clock })
  const tokens = await Promise.all(Array.from({ length: 100 }, async (_, i) => await (i % 2 === 0 ? a : b).manager.get()))
  t.equal(up.calls, 1)
  t.equal(new Set(tokens).size, 1)
})

test('a renewal that fails releases the lock at once; waiters give up with WX_TIMEOUT', async (t) => {
  const clock = { now: 1_700_000_000_000 }
  const store = createMemoryStore({ now: () => clock.now })
  t.teardown(async () => await store.close())
  const up = upstream()
  up.fail = new WxUnavailableError()
  const a = setup(t, { store, up, clock })
  await t.rejects(a.manager.get(), { code: 'WX_UNAVAILABLE' })
  t.equal(await store.lockCredential('wx0123456789abcdef', 'other', 60_000), true, 'the lock was released')
  // Now "other" holds the lock and never saves: a waiter gives up after the lock's lifetime.
  up.fail = null
  const started = Date.now()
  await t.rejects(a.manager.get(), { code: 'WX_TIMEOUT', statusCode: 504 })
  t.ok(Date.now() - started < 2_000, 'a bounded wait')
  t.equal(up.calls, 1, 'waiters do not call WeChat while another instance holds the lock')
})

test('waiters take the token another instance saves', async (t) => {
  const { manager, store, up, clock } = setup(t)
  await store.lockCredential('wx0123456789abcdef', 'other', 60_000)
  setTimeout(() => {
    store.saveCredential('wx0123456789abcdef', { value: 'from-the-other-instance', ...renewalTimes(clock.now, 7200) }, 'other').catch(t.error)
  }, 50)
  t.equal(await manager.get(), 'from-the-other-instance')
  t.equal(up.calls, 0)
})

test('a due token stays in use while another instance renews it', async (t) => {
  const { manager, store, up, clock } = setup(t)
  await store.saveCredential('wx0123456789abcdef', { value: 'current', ...renewalTimes(clock.now - 7000_000, 7200) }, 'x')
  await store.lockCredential('wx0123456789abcdef', 'other', 60_000)
  t.equal(await manager.get(), 'current')
  t.equal(up.calls, 0)
})

test('withToken: a refused token renews once and retries once', async (t) => {
  const { manager, up, lines } = setup(t)
  const seen: string[] = []
  const result = await manager.withToken(async (token) => {
    seen.push(token)
    if (seen.length === 1) throw new WxAccessTokenRejectedError()
    return 'done'
  })
  t.equal(result, 'done')
  t.equal(seen.length, 2, 'one retry')
  t.not(seen[0], seen[1], 'with the renewed token')
  t.equal(up.calls, 2, 'one renewal')
  t.ok(lines.some((l) => l.level === 'warn'))
  t.notOk(JSON.stringify(lines).includes('token-'), 'no token in the logs')
})

test('withToken: refused twice ends in WX_ACCESS_TOKEN_REJECTED; other errors are not retried', async (t) => {
  const { manager, up } = setup(t)
  let n = 0
  await t.rejects(manager.withToken(async () => { n++; throw new WxAccessTokenRejectedError() }), { code: 'WX_ACCESS_TOKEN_REJECTED', statusCode: 502 })
  t.equal(n, 2)
  t.equal(up.calls, 2)
  n = 0
  await t.rejects(manager.withToken(async () => { n++; throw new WxUnavailableError() }), { code: 'WX_UNAVAILABLE' })
  t.equal(n, 1)
})

test('many calls refused together lead to one renewal', async (t) => {
  const { manager, up } = setup(t)
  const first = await manager.get()
  up.delayMs = 20
  const results = await Promise.all(Array.from({ length: 50 }, async () => await manager.withToken(async (token) => {
    if (token === first) throw new WxAccessTokenRejectedError()
    return token
  })))
  t.equal(up.calls, 2, 'one initial fetch, one renewal')
  t.equal(new Set(results).size, 1)
})

test('a failed background renewal is logged, the current token kept, and the next try waits', async (t) => {
  const { manager, up, clock, lines } = setup(t)
  const first = await manager.get()
  clock.now += (7200 - 200) * 1000
  up.fail = new WxUnavailableError()
  t.equal(await manager.get(), first)
  await sleep(20)
  t.match(lines.at(-1), { level: 'warn', obj: { code: 'WX_UNAVAILABLE', retryInMs: 1000 } })
  for (let i = 0; i < 20; i++) t.equal(await manager.get(), first)
  await sleep(20)
  t.equal(up.calls, 2, 'a failing WeChat is not asked again at every call')
})

test('WeChat answering the very token it refused: no loop, no retry with it, one renewal', async (t) => {
  const { manager, up } = setup(t)
  const first = await manager.get()
  up.same = first
  let n = 0
  await t.rejects(manager.withToken(async () => { n++; throw new WxAccessTokenRejectedError() }), { code: 'WX_ACCESS_TOKEN_REJECTED' })
  t.equal(n, 1, 'not retried with the refused token')
  t.equal(up.calls, 2, 'one renewal')
})

test('withToken answers within twice the WeChat deadline, even while another instance holds the lock', async (t) => {
  const { manager, store, up } = setup(t)
  await store.lockCredential('wx0123456789abcdef', 'other', 60_000)
  const started = Date.now()
  await t.rejects(manager.withToken(async () => 'never'), { code: 'WX_TIMEOUT' })
  t.ok(Date.now() - started <= 2 * 300 + 100, `gave up after ${Date.now() - started} ms`)
  t.equal(up.calls, 0)
})

test('a token saved by another instance between the read and the lock is used, not fetched again', async (t) => {
  const clock = { now: 1_700_000_000_000 }
  const inner = createMemoryStore({ now: () => clock.now })
  t.teardown(async () => await inner.close())
  // The race, made deterministic: another instance saves and releases just before our lock.
  const store = Object.assign(Object.create(inner) as SessionStore, {
    lockCredential: async (name: string, owner: string, ttlMs: number) => {
      await inner.saveCredential(name, { value: 'saved-meanwhile', ...renewalTimes(clock.now, 7200) }, 'other')
      return await inner.lockCredential(name, owner, ttlMs)
    }
  })
  const { manager, up } = setup(t, { store, clock })
  t.equal(await manager.get(), 'saved-meanwhile')
  t.equal(up.calls, 0)
  t.equal(await inner.lockCredential('wx0123456789abcdef', 'next', 1000), true, 'our lock was released')
})
