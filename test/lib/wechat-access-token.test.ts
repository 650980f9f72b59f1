import { EventEmitter, once } from 'node:events'
import { test, type Test } from 'tap'
import { createAccessTokenManager, renewalTimes, EXPIRY_MARGIN_MS } from '../../lib/wechat-access-token.js'
import { WxAccessTokenRejectedError, WxUnavailableError } from '../../lib/errors.js'
import { createMemoryStore } from '../../lib/store/memory.js'
import type { SessionStore } from '../../lib/store/types.js'

const NAME = 'wx0123456789abcdef'

/** Waits for `promise`, failing with `what` when it takes longer than `ms` (a bound, not a pause). */
async function within<T> (promise: Promise<T>, what: string, ms = 2_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) })
  return await Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/** Polls `condition` (one event-loop turn between tries) until it holds, or fails after `ms`. */
async function until (condition: () => Promise<boolean>, what: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * Lets every pending promise chain run. The memory store and the fake upstream answer without
 * timers or I/O, so whatever a call to the manager set going has reached WeChat (or not) after it.
 */
const settle = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

interface Upstream {
  calls: number
  fetch: () => Promise<{ accessToken: string, expiresIn: number }>
  /** The next answers' behaviour. */
  expiresIn: number
  /** Answer this token instead of a new one. */
  same: string | null
  fail: Error | null
  /** Holds every answer until release(): a WeChat that is slow for as long as the test needs. */
  hold: () => void
  release: () => void
  /** Resolves at the next call to WeChat. */
  nextCall: () => Promise<void>
}

function upstream (): Upstream {
  const events = new EventEmitter()
  let gate: Promise<void> | null = null
  let open = (): void => {}
  const u: Upstream = {
    calls: 0,
    expiresIn: 7200,
    fail: null,
    same: null,
    hold: () => { gate = new Promise((resolve) => { open = resolve }) },
    release: () => { gate = null; open() },
    nextCall: async () => { await within(once(events, 'call'), 'a call to WeChat') },
    fetch: async () => {
      const n = ++u.calls
      events.emit('call')
      if (gate !== null) await gate
      if (u.fail !== null) throw u.fail
      if (u.same !== null) return { accessToken: u.same, expiresIn: u.expiresIn }
      return { accessToken: `token-${n}-${'x'.repeat(20)}`, expiresIn: u.expiresIn }
    }
  }
  return u
}

interface Line { level: string, obj: object }

function logs (): { lines: Line[], nextLine: (level: string) => Promise<object>, log: { warn: (o: object) => void, info: (o: object) => void } } {
  const lines: Line[] = []
  const events = new EventEmitter()
  const write = (level: string) => (obj: object) => {
    lines.push({ level, obj })
    events.emit(level, obj)
  }
  const nextLine = async (level: string): Promise<object> => (await within(once(events, level), `a ${level} log line`))[0] as object
  return { lines, nextLine, log: { warn: write('warn'), info: write('info') } }
}

function setup (t: Test, opts: { store?: SessionStore, up?: Upstream, clock?: { now: number } } = {}) {
  const clock = opts.clock ?? { now: 1_700_000_000_000 }
  const store = opts.store ?? createMemoryStore({ now: () => clock.now })
  if (opts.store === undefined) t.teardown(async () => await store.close())
  const up = opts.up ?? upstream()
  const { lines, nextLine, log } = logs()
  const manager = createAccessTokenManager({ name: NAME, store, fetch: up.fetch, timeoutMs: 300, storeTimeoutMs: 50, log: log as never, now: () => clock.now })
  return { manager, store, up, clock, lines, nextLine }
}

test('renewalTimes: 5 minutes ahead, or half-way for a short-lived token', async (t) => {
  t.same(renewalTimes(0, 7200), { expiresAt: 7_200_000, refreshAt: 6_900_000 })
  t.same(renewalTimes(1000, 400), { expiresAt: 401_000, refreshAt: 201_000 })
})

test('one fetch serves every caller; concurrent callers share it', async (t) => {
  const { manager, up } = setup(t)
  up.hold()
  const asked = up.nextCall()
  const all = Promise.all(Array.from({ length: 100 }, async () => await manager.get()))
  await asked
  up.release()
  const tokens = await all
  t.equal(up.calls, 1, 'one upstream call for 100 concurrent callers')
  t.equal(new Set(tokens).size, 1)
  t.equal(await manager.get(), tokens[0], 'then served from memory')
  t.equal(up.calls, 1)
})

test('renewed ahead of expiry in the background; the current token is served meanwhile', async (t) => {
  const { manager, up, clock } = setup(t)
  const first = await manager.get()
  clock.now += (7200 - 300) * 1000 // due, still valid
  up.hold() // WeChat answers only when the test says so
  const asked = up.nextCall()
  t.equal(await within(manager.get(), 'the current token'), first, 'no waiting: the current token while renewing')
  await asked
  t.equal(await within(manager.get(), 'the current token'), first, 'still the current token while WeChat has not answered')
  up.release()
  await until(async () => await manager.get() !== first, 'the renewed token is served')
  t.equal(up.calls, 2, 'one renewal')
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
  up.hold()
  const asked = up.nextCall()
  const a = setup(t, { store, up, clock })
  const b = setup(t, { store, up, clock })
  const all = Promise.all(Array.from({ length: 100 }, async (_, i) => await (i % 2 === 0 ? a : b).manager.get()))
  await asked
  up.release()
  const tokens = await all
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
  t.equal(await store.lockCredential(NAME, 'other', 60_000), true, 'the lock was released')
  // Now "other" holds the lock and never saves: a waiter gives up after the lock's lifetime.
  up.fail = null
  const started = Date.now()
  await t.rejects(a.manager.get(), { code: 'WX_TIMEOUT', statusCode: 504 })
  t.ok(Date.now() - started < 2_000, 'a bounded wait')
  t.equal(up.calls, 1, 'waiters do not call WeChat while another instance holds the lock')
})

test('waiters take the token another instance saves', async (t) => {
  const clock = { now: 1_700_000_000_000 }
  const inner = createMemoryStore({ now: () => clock.now })
  t.teardown(async () => await inner.close())
  // The other instance saves once ours has found the lock taken, and so waits.
  const refused = new EventEmitter()
  const store = Object.assign(Object.create(inner) as SessionStore, {
    lockCredential: async (name: string, owner: string, ttlMs: number) => {
      const taken = await inner.lockCredential(name, owner, ttlMs)
      if (!taken) refused.emit('refused')
      return taken
    }
  })
  const { manager, up } = setup(t, { store, clock })
  await inner.lockCredential(NAME, 'other', 60_000)
  const waiting = within(once(refused, 'refused'), 'our instance finding the lock taken')
  const got = manager.get()
  await waiting
  await inner.saveCredential(NAME, { value: 'from-the-other-instance', ...renewalTimes(clock.now, 7200) }, 'other')
  t.equal(await got, 'from-the-other-instance')
  t.equal(up.calls, 0)
})

test('a due token stays in use while another instance renews it', async (t) => {
  const { manager, store, up, clock } = setup(t)
  await store.saveCredential(NAME, { value: 'current', ...renewalTimes(clock.now - 7000_000, 7200) }, 'x')
  await store.lockCredential(NAME, 'other', 60_000)
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
  up.hold()
  const asked = up.nextCall()
  const all = Promise.all(Array.from({ length: 50 }, async () => await manager.withToken(async (token) => {
    if (token === first) throw new WxAccessTokenRejectedError()
    return token
  })))
  await asked
  up.release()
  const results = await all
  t.equal(up.calls, 2, 'one initial fetch, one renewal')
  t.equal(new Set(results).size, 1)
})

test('a failed background renewal is logged, the current token kept, and the next try waits', async (t) => {
  const { manager, up, clock, nextLine } = setup(t)
  const first = await manager.get()
  clock.now += (7200 - 200) * 1000
  up.fail = new WxUnavailableError()
  const warned = nextLine('warn')
  t.equal(await manager.get(), first)
  t.match(await warned, { code: 'WX_UNAVAILABLE', retryInMs: 1000 }, 'the failure is logged, with when the next try comes')
  t.equal(up.calls, 2)
  for (let i = 0; i < 20; i++) t.equal(await manager.get(), first, 'the current token is kept')
  await settle() // a renewal any of those calls started would have asked WeChat by now
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
  await store.lockCredential(NAME, 'other', 60_000)
  const started = Date.now()
  await t.rejects(manager.withToken(async () => 'never'), { code: 'WX_TIMEOUT' })
  // Two deadlines of 300 ms, with a loaded machine's margin, and less than three (nor the other
  // instance's lock, 60 s).
  t.ok(Date.now() - started < 3 * 300, `gave up after ${Date.now() - started} ms`)
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
  t.equal(await inner.lockCredential(NAME, 'next', 1000), true, 'our lock was released')
})
