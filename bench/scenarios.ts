// What each scenario requests, in the terms of both load generators, and the sessions they run on.
import type autocannon from 'autocannon'
import { request } from 'undici'

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
  wrk: { script: string, url: string, file?: string[], args: (file: string) => string[] }
}

async function post (url: string, body: unknown): Promise<Pair> {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${text}`)
  return JSON.parse(text) as Pair
}

/** Logs in `count` users, 20 at a time, with codes `<prefix><n>.<tag>`. */
async function prepareSessions (base: string, count: number, prefix: string, tag: string): Promise<Pair[]> {
  const out: Pair[] = []
  let next = 0
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (next < count) {
      const i = next++
      out[i] = await post(`${base}/auth/login`, { code: `${prefix}${i}.${tag}` })
    }
  }))
  return out
}

function ceiling (base: string): Scenario {
  return {
    name: 'ceiling',
    describe: 'GET /health/live: trivial JSON, no auth, no Redis',
    options: { url: `${base}/health/live` },
    wrk: { script: 'ceiling', url: `${base}/health/live`, args: () => [] }
  }
}

function authenticated (base: string, sessions: Pair[]): Scenario {
  let next = 0
  return {
    name: 'authenticated',
    describe: `GET /auth/me with valid access tokens of ${sessions.length} sessions (signature, claims, blacklist and session checks)`,
    options: {
      url: base,
      requests: [{
        method: 'GET',
        path: '/auth/me',
        setupRequest: (req) => ({ ...req, headers: { authorization: `Bearer ${(sessions[next++ % sessions.length] as Pair).accessToken}` } })
      }]
    },
    wrk: { script: 'authenticated', url: `${base}/`, file: sessions.map((p) => p.accessToken), args: (file) => [file] }
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

function login (base: string): Scenario {
  let seq = 0
  let wrkRun = 0
  return {
    name: 'login',
    describe: 'POST /auth/login with fresh codes of 10,000 users, through the simulator over HTTP',
    options: {
      url: base,
      requests: [{
        method: 'POST',
        path: '/auth/login',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => {
          const n = seq++
          return { ...req, body: JSON.stringify({ code: `user${n % 10_000}.${n}` }) }
        }
      }]
    },
    wrk: { script: 'login', url: `${base}/`, args: () => [`w${++wrkRun}`] }
  }
}

/**
 * Every scenario, the ceiling first, against the gateway at `base`: logs in the sessions they run on,
 * `sessions` for `authenticated` and as many for `refresh`. A code works once: another server logging in
 * the same users against the same simulator (bench/peers.ts) gives another `codeTag`.
 */
export async function prepareScenarios (base: string, sessions: number, codeTag = 'prep'): Promise<Scenario[]> {
  const readers = await prepareSessions(base, sessions, 'reader', codeTag)
  const rotors = await prepareSessions(base, sessions, 'rotor', codeTag)
  return [ceiling(base), authenticated(base, readers), refresh(base, rotors), login(base)]
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
