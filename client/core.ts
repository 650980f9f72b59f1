// Logging in: the options with their defaults, the stored session, wx.login() codes, and one login in
// flight at a time for every caller, bounded per minute.
import { WechatAuthError, codeOf, errorOf } from './errors.js'
import { createEmitter, createSessionStore } from './session.js'
import { createTransport, ok } from './transport.js'
import type { ClientOptions, PlatformResponse, ServerErrorCode, Session, TokenPair } from './types.js'

// `a || b` rather than `a ?? b` throughout the client: ES2017 has no `??`, esbuild's rewrite costs bytes
// the 8 KB bundle lacks, and every value so read is an object, a non-empty string or absent.

// Every mini-program runtime has setTimeout; declared here so the client compiles without Node's types.
declare const setTimeout: (fn: () => void, ms: number) => unknown

/** The codes that end a session: the client forgets its tokens and logs in again. */
export const RELOGIN_CODES: ServerErrorCode[] = ['AUTH_TOKEN_REVOKED', 'AUTH_TOKEN_INVALID', 'AUTH_REFRESH_INVALID', 'AUTH_REFRESH_REUSED', 'AUTH_SESSION_REPLACED', 'AUTH_SESSION_KICKED']
// A code the gateway could not exchange: a new one from wx.login() is tried once.
const NEW_CODE = ['WX_CODE_USED', 'WX_CODE_INVALID']

/** v without the keys whose value is undefined: an option passed as `undefined` keeps its default. */
function defined<T extends object> (v: T): T {
  const d: Partial<T> = {}
  for (const k in v) if (v[k] !== undefined) d[k] = v[k]
  return d as T
}

const withDefaults = (options: ClientOptions) => Object.assign({
  prefix: '/auth',
  storageKey: 'wechat-auth',
  refreshAhead: 0.2,
  maxLoginsPerMinute: 3,
  retries: 2,
  maxRetryAfter: 10,
  refreshTries: 3,
  refreshTimeout: 5000,
  reloginOn: RELOGIN_CODES,
  now: () => Date.now(),
  sleep: (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms) }),
  random: Math.random
}, defined(options))

export const bearer = (s: Pick<Session, 'accessToken'>) => ({ Authorization: `Bearer ${s.accessToken}` })

/** Runs start(key) once for every caller that comes with the same key while it is in flight. */
export function singleFlight<T, K = void> (start: (key: K) => Promise<T>): (key: K) => Promise<T> {
  let flight: Promise<T> | null = null
  let of: K
  return (key) => {
    if (flight === null || of !== key) {
      of = key
      const f = flight = start(key)
      const done = (): void => { if (flight === f) flight = null }
      f.then(done, done)
    }
    return flight
  }
}

/** Refuses a login beyond `max` a minute: a gateway that keeps ending sessions cannot make the client loop. */
function countLogin (logins: number[], max: number, now: number): void {
  while (logins.length > 0 && (logins[0] as number) <= now - 60_000) logins.shift()
  if (logins.length >= max) {
    const err = new WechatAuthError('CLIENT_LOGIN_LIMIT', 'too many logins')
    err.retryAfter = Math.ceil(((logins[0] as number) + 60_000 - now) / 1000)
    throw err
  }
  logins.push(now)
}

export function createCore (options: ClientOptions) {
  const o = withDefaults(options)
  const store = createSessionStore(o.platform, o.storageKey)
  const events = createEmitter()
  const logins: number[] = []

  const wxCode = (): Promise<string> => new Promise((resolve, reject) => {
    const failed = (errMsg?: string) => reject(new WechatAuthError('CLIENT_WX_LOGIN_FAILED', errMsg || 'no code'))
    // Its own timeout (wx, uni and Taro take one): a wx.login() that never calls back would hold every request.
    o.platform.login({ timeout: 1e4, success: (res) => res && res.code ? resolve(res.code) : failed(), fail: (err) => failed(err && err.errMsg) })
  })

  /** Runs fn with a fresh wx.login() code, and once more with a new one if the gateway refused it. */
  async function withCode<T> (fn: (code: string) => Promise<T>): Promise<T> {
    try {
      return await fn(await wxCode())
    } catch (err) {
      if (NEW_CODE.indexOf(codeOf(err) as string) < 0) throw err
      return await fn(await wxCode())
    }
  }

  /**
   * Keeps a login's or a refresh's pair; a login's (`since`: the logout count it started at) only when
   * the app did not log out meanwhile: its session is then ended at the gateway instead.
   */
  function keep (pair: TokenPair, since?: number): Session {
    if (!pair || typeof pair.accessToken !== 'string' || typeof pair.refreshToken !== 'string') { // a primitive has no such properties
      throw new WechatAuthError('CLIENT_BAD_RESPONSE', 'no tokens: check baseUrl and prefix')
    }
    if (since !== undefined && logouts.n !== since) {
      transport.send({ url: `${o.prefix}/logout`, method: 'POST', header: bearer(pair) }).catch(() => {})
      stillIn(since)
    }
    return store.save(pair, o.now())
  }

  // Logouts the app started: a request in flight then must not log in again. `p`: the last one, settled
  // or not, never rejected.
  const logouts: { n: number, p?: Promise<void> } = { n: 0 }

  /** Forgets a session, if it is still the current one, and says why. */
  function end (s: Session, reason: WechatAuthError | 'logout'): void {
    if (store.get() !== s) return
    store.clear()
    events.emit('loggedOut', reason === 'logout' ? { reason } : Object.assign({ reason: reason.code }, reason.detail && { detail: reason.detail }))
  }

  const transport = createTransport(o)
  // One flight per logout count: a caller after a logout does not join a login started before it.
  const login = singleFlight(async (since: number) => {
    countLogin(logins, o.maxLoginsPerMinute, o.now())
    const body = { appid: o.appid, deviceType: o.deviceType, deviceName: o.deviceName }
    // A 503 or 504 is retried: a code is exchanged at most once (a spent one is WX_CODE_USED, then a new code).
    const pair = await withCode((code) => transport.call<TokenPair>({ url: `${o.prefix}/login`, method: 'POST', data: Object.assign({ code }, body), retry: true }))
    const s = keep(pair, since)
    events.emit('loggedIn', s)
    return s
  })

  /**
   * The stored session while its refresh token lives, else a login shared with every caller; after a
   * logout in flight, and CLIENT_LOGGED_OUT when the app logged out since `since` (the caller's count).
   */
  async function ensureLogin (since = logouts.n): Promise<Session> {
    await logouts.p
    stillIn(since)
    const s = store.get()
    if (s !== null && s.refreshExpiresAt > o.now()) return s
    if (s !== null) store.clear()
    return await login(since)
  }

  /** Throws CLIENT_LOGGED_OUT when the app started a logout since `since` (logouts.n then): a request of before logs in no more. */
  function stillIn (since: number): void {
    if (logouts.n !== since) throw new WechatAuthError('CLIENT_LOGGED_OUT', 'logged out')
  }

  return Object.assign({ o, store, events, withCode, keep, end, ensureLogin, logouts, stillIn }, transport)
}

export type Core = ReturnType<typeof createCore>

/**
 * logout(): ends the session at the gateway (every session of the user with allDevices) and forgets it,
 * telling loggedOut listeners `why`. An expired access token is refreshed first: the gateway logs out
 * only with a live one.
 */
export function createLogout ({ o, store, send, end, logouts }: Core, refreshFrom: (s: Session) => Promise<WechatAuthError | undefined>) {
  const run = async (opts: { allDevices?: boolean } = {}, why: WechatAuthError | 'logout' = 'logout'): Promise<void> => {
    if (why === 'logout') logouts.n++
    let s = store.get()
    // Nothing to log out with: "sign out everywhere" did not happen, which the app must hear.
    if (s === null) {
      if (opts.allDevices) throw new WechatAuthError('CLIENT_LOGGED_OUT', 'no session')
      return
    }
    // Marked closing while the logout is sent: a refresh of it answering meanwhile is dropped.
    const out = (s: Session) => send({ url: `${o.prefix}/logout`, method: 'POST', data: opts.allDevices ? { allDevices: true } : undefined, header: bearer(store.closing(s) as Session) })
    let res: PlatformResponse | undefined
    let failed: unknown
    try {
      if (o.now() < s.expiresAt) res = await out(s)
      if (res === undefined || errorOf(res).code === 'AUTH_TOKEN_EXPIRED') {
        // A refresh token the gateway refused ended the session already: nothing left to log out with.
        store.closing(null)
        const ended = await refreshFrom(s)
        if (ended) throw ended
        res = await out(s = store.get() || s)
      }
    } catch (err) {
      // Offline: the session expires at the gateway.
      failed = err
    }
    // The tokens are forgotten in any case; "sign out everywhere" that did not happen is an error.
    end(s, why)
    if (opts.allDevices && (res === undefined || !ok(res))) throw failed || errorOf(res as PlatformResponse)
  }
  return (opts?: { allDevices?: boolean }, why?: WechatAuthError | 'logout'): Promise<void> => {
    const p = run(opts, why)
    logouts.p = p.catch(() => {})
    return p
  }
}
