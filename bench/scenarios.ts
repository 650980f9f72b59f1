// What each scenario requests, in the terms of both load generators, and the sessions they run on.
import type autocannon from 'autocannon'
import { request } from 'undici'
import { ConfigSchema } from '../lib/schemas.js'
import { MAX_ENDED } from '../lib/store/redis-layout.js'

interface Pair { accessToken: string, refreshToken: string }

export interface Scenario {
  name: string
  describe: string
  /** How autocannon runs it. */
  options: autocannon.Options
  /**
   * How wrk runs it: a script of bench/wrk/, the URL, and the script's arguments (fresh for each run).
   * `file`, if any, holds the lines of a data file the script reads: written before the scenario's first
   * run, its path is given to `args`.
   */
  wrk: {
    script: string
    url: string
    file?: string[]
    /** The file is written again before every run (its lines may change between runs); the script only reads it. */
    fresh?: boolean
    args: (file: string) => string[]
  }
  /** Brings the gateway's data to the scenario's state, before each run (warm-up and measure; only if it runs): one that must act once wraps itself in `once`. */
  prepare?: () => Promise<void>
}

async function post (url: string, body: unknown): Promise<Pair> {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${text}`)
  return JSON.parse(text) as Pair
}

/** `count` logins at `base`, `parallel` at once, the i-th with the code `codeOf(i)`: their pairs, in order. */
async function logins (base: string, count: number, parallel: number, codeOf: (i: number) => string): Promise<Pair[]> {
  const out: Pair[] = []
  let next = 0
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      const i = next++
      out[i] = await post(`${base}/auth/login`, { code: codeOf(i) })
    }
  }))
  return out
}

/** Logs in `count` users, 20 at a time, with codes `<prefix><n>.<tag>`. */
async function prepareSessions (base: string, count: number, prefix: string, tag: string): Promise<Pair[]> {
  return await logins(base, count, 20, (i) => `${prefix}${i}.${tag}`)
}

function ceiling (base: string): Scenario {
  return {
    name: 'ceiling',
    describe: 'GET /health/live: trivial JSON, no auth, no Redis',
    options: { url: `${base}/health/live` },
    wrk: { script: 'ceiling', url: `${base}/health/live`, args: () => [] }
  }
}

/**
 * Access tokens last 15 minutes (ACCESS_TOKEN_TTL's default, the Go peer's too): before a run, the
 * readers log in again once theirs are this old (counted from before their logins), so that a run of
 * many rounds never meets an expired one: a run (warm-up and measure) must stay under the 5 minutes
 * left, as every run of BENCH_DURATION and BENCH_WARMUP in seconds does.
 */
const RENEW_AFTER_MS = 10 * 60_000

/** `renew` logs the same readers in again, with fresh codes: their new pairs, in the same order. */
function authenticated (base: string, readers: { sessions: Pair[], loggedInAt: number }, renew: () => Promise<Pair[]>): Scenario {
  const { sessions } = readers
  const tokens = sessions.map((p) => p.accessToken)
  let issuedAt = readers.loggedInAt
  let next = 0
  return {
    name: 'authenticated',
    describe: `GET /auth/me with valid access tokens of ${sessions.length} sessions (signature, claims, blacklist and session checks)`,
    options: {
      url: base,
      requests: [{
        method: 'GET',
        path: '/auth/me',
        setupRequest: (req) => ({ ...req, headers: { authorization: `Bearer ${tokens[next++ % tokens.length] as string}` } })
      }]
    },
    wrk: { script: 'authenticated', url: `${base}/`, file: tokens, fresh: true, args: (file) => [file] },
    prepare: async () => {
      if (Date.now() - issuedAt < RENEW_AFTER_MS) return
      const started = Date.now()
      const renewed = await renew()
      for (const [i, p] of renewed.entries()) tokens[i] = p.accessToken
      issuedAt = started
    }
  }
}

/** The wrk script leaves each run's newest tokens in its file, so the next run goes on from there. */
function refresh (base: string, sessions: Pair[]): Scenario {
  const idle = sessions.map((p) => ({ token: p.refreshToken }))
  return {
    name: 'refresh',
    describe: `POST /auth/refresh chains over ${sessions.length} sessions: each request presents the token the last one returned`,
    options: {
      url: base,
      requests: [{
        method: 'POST',
        path: '/auth/refresh',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req, context) => {
          const s = idle.shift()
          if (s === undefined) throw new Error('more connections than sessions')
          ;(context as { session?: { token: string } }).session = s
          return { ...req, body: JSON.stringify({ refreshToken: s.token }) }
        },
        onResponse: (status, body, context) => {
          const s = (context as { session: { token: string } }).session
          if (status === 200) s.token = (JSON.parse(body) as Pair).refreshToken
          idle.push(s)
        }
      }]
    },
    wrk: { script: 'refresh', url: `${base}/`, file: sessions.map((p) => p.refreshToken), args: (file) => [file] }
  }
}

/** A login's body for the n-th login of a run: see bench/wrk/login.lua, which builds the same codes. */
function loginBody (run: string, n: number, pool: LoginPool | null): string {
  const user = pool === null ? `new${run}-${n}` : `${pool.prefix}${n % pool.users}`
  return JSON.stringify({ code: `${user}.${run}-${n}` })
}

/** The users a login scenario takes in turn, or null: every login a user of its own, new to the gateway. */
interface LoginPool { prefix: string, users: number }

/**
 * POST /auth/login with fresh codes. With no pool, each login is a user's first (no session yet: what
 * a login costs below the session limit, whatever the scenarios before it did). With a pool, its users
 * are brought to the session limit before the first run (`prepare`), and stay there: each login ends
 * the least recently active of the user's sessions and leaves a marker (issue 14's worst case); the
 * fill also gives each user its steady number of markers.
 */
function login (base: string, name: string, pool: LoginPool | null, prepare?: () => Promise<void>): Scenario {
  let seq = 0
  let wrkRun = 0
  const describe = pool === null
    ? 'POST /auth/login, each login a user new to the gateway (a first session), through the simulator over HTTP'
    : `POST /auth/login by ${pool.users.toLocaleString('en')} users in turn, each at the session limit (${LIMIT_SESSIONS} live sessions) with its markers: every login ends one`
  return {
    name,
    describe,
    ...(prepare === undefined ? {} : { prepare }),
    options: {
      url: base,
      requests: [{
        method: 'POST',
        path: '/auth/login',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: loginBody('a', seq++, pool) })
      }]
    },
    wrk: { script: 'login', url: `${base}/`, args: () => [`w${++wrkRun}`, String(pool?.users ?? 0), pool?.prefix ?? ''] }
  }
}

/** The session limit the bench's gateways run with: MAX_SESSIONS_PER_USER's default. */
const LIMIT_SESSIONS = ConfigSchema.properties.MAX_SESSIONS_PER_USER.default
/** Users of the login-limit scenario: enough that a user's hash is not always in the CPU's cache. */
const LIMIT_USERS = 2_000
/**
 * Logins per user before the first run: the limit, then as many more as the markers the store keeps
 * (MAX_ENDED), so that each user's hash holds its steady number of markers (16 to 24) from the first
 * measured login on, whichever gateway is measured first.
 */
const FILL_LOGINS = LIMIT_SESSIONS + MAX_ENDED

/** Logs every user of `pool` in FILL_LOGINS times at `base`, 50 logins at once. */
async function fillToLimit (base: string, pool: LoginPool, tag: string): Promise<void> {
  await logins(base, pool.users * FILL_LOGINS, 50, (i) => `${pool.prefix}${i % pool.users}.${tag}-${i}`)
}

/** `fn` run once, at its first call; every call waits for that one. */
function once (fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined
  return async () => { done ??= fn(); await done }
}

/**
 * Every scenario, the ceiling first, against the gateway at `base`: logs in the sessions they run on,
 * `sessions` for `authenticated` and as many for `refresh`. A code works once: another server logging in
 * the same users against the same simulator (bench/peers.ts) gives another `codeTag`.
 */
export async function prepareScenarios (base: string, sessions: number, codeTag = 'prep'): Promise<Scenario[]> {
  const loggedInAt = Date.now()
  const readers = await prepareSessions(base, sessions, 'reader', codeTag)
  let renewals = 0
  const renewReaders = async (): Promise<Pair[]> => await prepareSessions(base, sessions, 'reader', `${codeTag}-renewed${++renewals}`)
  const rotors = await prepareSessions(base, sessions, 'rotor', codeTag)
  const pool = { prefix: `limit${codeTag}`, users: LIMIT_USERS }
  return [ceiling(base), authenticated(base, { sessions: readers, loggedInAt }, renewReaders), refresh(base, rotors), login(base, 'login', null),
    login(base, 'login-limit', pool, once(async () => { await fillToLimit(base, pool, codeTag) }))]
}

/**
 * The same scenario against another gateway started with the same Redis and secret (`from` and `to`
 * are base URLs). Its data and state stay shared: a refresh chain goes on where the other gateway left
 * it, and login codes stay fresh.
 */
export function scenarioAt (s: Scenario, from: string, to: string): Scenario {
  const at = (url: string): string => url.startsWith(from) ? to + url.slice(from.length) : url
  return { ...s, options: { ...s.options, url: at(s.options.url) }, wrk: { ...s.wrk, url: at(s.wrk.url) } }
}
