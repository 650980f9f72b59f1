// The load of the failover tests and what it tells: users who each hold one session, asking
// GET /auth/me and refreshing, over real HTTP to one gateway or spread over several, while a test
// fails a Redis node; then the answers' kinds, when the last failure came, and which sessions ended.
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import type { Test } from 'tap'
import { until } from './redis-deployments.js'

export const USERS = 12
export const RECOVERY_MS = 10_000

interface Answer { at: number, what: 'me' | 'refresh', status: number, code?: string }

export type Run = Awaited<ReturnType<typeof load>>

async function call (base: string, method: 'GET' | 'POST', path: string, opts: { token?: string, body?: unknown }): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await request(`${base}${path}`, {
    method,
    headers: { ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {})
  })
  const text = await res.body.text()
  return { status: res.statusCode, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }
}

/**
 * USERS users, each logged in once, asking GET /auth/me and refreshing every third request, 20 ms
 * apart; a 503 keeps the tokens it had. With several gateways, each user's requests go to each in
 * turn (as behind a load balancer). Runs until `stop` resolves; returns every answer and each
 * user's last tokens.
 */
async function load (bases: string[], stop: Promise<void>): Promise<{ answers: Answer[], users: Array<{ accessToken: string, refreshToken: string }> }> {
  const state = { running: true }
  stop.then(() => { state.running = false }, () => {})
  const answers: Answer[] = []
  const at = (n: number): string => bases[n % bases.length] as string
  const users = await Promise.all(Array.from({ length: USERS }, async (_, i) => {
    const login = await call(at(i), 'POST', '/auth/login', { body: { code: `failover${i}.${Date.now()}` } })
    if (login.status !== 200) throw new Error(`login ${login.status} ${JSON.stringify(login.body)}`)
    return { accessToken: String(login.body.accessToken), refreshToken: String(login.body.refreshToken) }
  }))
  await Promise.all(users.map(async (user, i) => {
    for (let n = 0; state.running; n++) {
      const what = n % 3 === 2 ? 'refresh' : 'me'
      const res = what === 'me'
        ? await call(at(i + n), 'GET', '/auth/me', { token: user.accessToken })
        : await call(at(i + n), 'POST', '/auth/refresh', { body: { refreshToken: user.refreshToken } })
      answers.push({ at: Date.now(), what, status: res.status, ...(typeof res.body.code === 'string' ? { code: res.body.code } : {}) })
      if (what === 'refresh' && res.status === 200) Object.assign(user, { accessToken: res.body.accessToken, refreshToken: res.body.refreshToken })
      await sleep(20)
    }
  }))
  return { answers, users }
}

/**
 * What a failover did to the load: the answers' kinds, the last failure after the failure and after
 * the promotion, sessions that ended. A session ends when its last acknowledged rotation was lost
 * (the dead master had not passed it on): its token is then refused. Returns how many; asserts none
 * unless `mayLose`.
 */
export async function check (t: Test, base: string, run: Run, failedAt: number, promotedAt: number, mayLose = false): Promise<number> {
  const kinds = [...new Set(run.answers.map((a) => `${a.status} ${a.code ?? ''}`.trim()))].sort()
  const failures = run.answers.filter((a) => a.status !== 200)
  const lastFailure = failures.at(-1)?.at ?? 0
  t.comment(`${run.answers.length} answers (${kinds.join(', ')}), ${failures.length} failed; promoted ${promotedAt - failedAt} ms after the failure, last failed answer ${lastFailure === 0 ? 'none' : `${lastFailure - failedAt} ms after it (${lastFailure - promotedAt} ms after the promotion)`}`)
  // A lost rotation logs its user out (401 from then on): the measure of a lossy run is that count.
  if (!mayLose) {
    t.ok(kinds.every((k) => k === '200' || k === '503 STORE_UNAVAILABLE'), 'only 200 and coded 503')
    t.ok(lastFailure - promotedAt <= RECOVERY_MS, 'every request succeeds again within 10 s of the promotion')
    t.ok(run.answers.filter((a) => a.at > promotedAt + RECOVERY_MS).length > USERS * 10, 'and the load went on after that')
  }
  // A 503 says the store is slow now (a promoted master without its replica makes WAITs last their
  // timeout), not that the session ended: asked again until it answers, for up to 10 s.
  const finalRefresh = async (u: { refreshToken: string }): Promise<{ status: number, body: Record<string, unknown> }> => {
    for (let i = 0; ; i++) {
      const res = await call(base, 'POST', '/auth/refresh', { body: { refreshToken: u.refreshToken } })
      if (res.status !== 503 || i >= 50) return res
      await sleep(200)
    }
  }
  const ends = await Promise.all(run.users.map(finalRefresh))
  const lost = ends.filter((r) => r.status !== 200)
  t.comment(`sessions ended: ${lost.length} of ${USERS} (${lost.map((r) => r.body.code).join(', ')})`)
  if (!mayLose) t.equal(lost.length, 0, 'no session ended: each user refreshes with the last token it was given')
  return lost.length
}

/**
 * The load of `load()` on `base` (one gateway or several) while `fail()` happens 1.5 s in; runs until
 * RECOVERY_MS + 2 s after `promoted()` says the deployment has its new master (within
 * `promotionTimeoutMs`). The answers, and when each of the two was.
 */
export async function failUnderLoad (base: string | string[], fail: () => Promise<unknown>, promoted: () => Promise<boolean>, what: string, promotionTimeoutMs: number): Promise<{ run: Run, failedAt: number, promotedAt: number }> {
  let release = (): void => {}
  const running = load([base].flat(), new Promise<void>((resolve) => { release = resolve }))
  await sleep(1500)
  await fail()
  const failedAt = Date.now()
  await until(promoted, what, promotionTimeoutMs)
  const promotedAt = Date.now()
  await sleep(RECOVERY_MS + 2000)
  release()
  return { run: await running, failedAt, promotedAt }
}
