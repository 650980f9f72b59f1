// A WeChat server stand-in for development and tests: a real HTTP server that honours the contract in
// ../shared/wechat-api.md, including its traps (text/plain JSON, no errcode on a successful
// jscode2session). It serves one mini program, or several (`apps`), each with its own secret.
//
// Endpoints (the WeChat ones answer errors with HTTP 200 and an errcode, as WeChat does):
//   GET  /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code
//   POST /cgi-bin/stable_token  {"grant_type":"client_credential","appid","secret","force_refresh"}
//        A body that is not a JSON object -> 47001; grant_type -> 40002; appid -> 40013; secret -> 40125.
//   GET  /wxa/checksession?access_token&openid&signature&sig_method=hmac_sha256
//   GET  /wxa/resetusersessionkey (same parameters): a new session_key for the user
//        A wrong, missing or stale signature, or an unknown openid -> 87009; another sig_method -> 40097.
//   POST /wxa/business/getuserphonenumber?access_token  {"code"}
//        A missing, empty or used code -> 40029 (WeChat documents no other code for it); a body that
//        is not a JSON object -> 47001.
//   POST /dev/encrypt?user[&appid]  (development aid, not WeChat): what wx.getUserInfo would hand the
//        client for the JSON object body: encryptedData + iv (with a watermark, under the user's
//        session_key), and rawData + signature (sha1(rawData + session_key)).
//        No session_key for that user and appid -> HTTP 404 errcode 40400; not a JSON object -> 400 47001.
// Endpoints that take access_token: missing -> 41001; unknown, revoked or replaced by force_refresh
// more than 5 minutes ago -> 40001; expired -> 42001. A token acts for the appid that obtained it.
// Any body over 64 KiB -> HTTP 413 errcode 45002. Unknown paths and methods -> HTTP 404. A handler
// that throws (say, a test's `now`) -> HTTP 500 errcode -1.
//
// A login code or a phone code is `<user>` or `<user>.<anything>`; each code works once. Special users
// produce WeChat's errors so every path can be tried by hand:
//   invalid -> 40029, limit -> 45011, busy -> -1 on the first try of a code (login and phone codes);
//   risky -> 40226, slow -> answers after `slowMs`, garbage -> a non-JSON body, nounion -> no unionid
//   (login codes only).
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface SimulatorApp {
  appid: string
  secret: string
}

export interface SimulatorOptions {
  appid?: string
  secret?: string
  /** Several mini programs; when given, `appid` and `secret` are ignored and the first app is the default. */
  apps?: SimulatorApp[]
  host?: string
  port?: number
  /** How long the `slow` user waits before answering, in ms. */
  slowMs?: number
  /** Lifetime of an access_token, in seconds (WeChat: 7200). */
  tokenTtlSec?: number
  /** A delay before every stable_token answer, so tests can make concurrent callers overlap. */
  stableTokenDelayMs?: number
  /** The clock for token expiry and watermarks, in ms (a fake one keeps tests free of sleeps). */
  now?: () => number
}

export interface SimulatorCall {
  path: string
  /** The js_code or phone code WeChat received (after decoding); null for other endpoints. */
  code: string | null
  errcode: number
  /** The mini program the call acted for, when the simulator knows it. */
  appid?: string
}

export interface PhoneNumber {
  phoneNumber: string
  purePhoneNumber: string
  countryCode: string
}

/** What wx.getUserInfo hands a client: the data in clear and signed, and encrypted. */
export interface EncryptedData {
  encryptedData: string
  iv: string
  /** The data without watermark, as JSON text. */
  rawData: string
  /** sha1(rawData + session_key), hex. */
  signature: string
}

export interface Simulator {
  url: string
  /** The first (default) mini program's credentials. */
  appid: string
  secret: string
  apps: SimulatorApp[]
  /** Every call received, in order; tests assert on it. */
  calls: SimulatorCall[]
  /** The openid a user gets in a mini program (default: the first), as the simulator computes it. */
  openidOf: (user: string, appid?: string) => string
  /** The same in every mini program, as with an open-platform account. */
  unionidOf: (user: string) => string
  /** The last session_key issued to a user in a mini program (default: the first). */
  sessionKeyOf: (user: string, appid?: string) => string | undefined
  phoneOf: (user: string) => PhoneNumber
  /** The last access_token issued for a mini program, even if expired; undefined once invalidated. */
  accessTokenOf: (appid?: string) => string | undefined
  /** Revokes every token of a mini program at once: later calls with them get 40001. */
  invalidateAccessToken: (appid?: string) => void
  /** What POST /dev/encrypt answers; throws when the user has no session_key in that mini program. */
  encryptFor: (user: string, data: Record<string, unknown>, appid?: string) => EncryptedData
  close: () => Promise<void>
}

export const DEV_APPID = 'wx00000000000000d0'

const MAX_BODY_BYTES = 64 * 1024
// WeChat keeps a replaced access_token valid this long, and renews a stable one this close to its end.
const TOKEN_OVERLAP_MS = 300_000
const GARBAGE = '<html><body>502 Bad Gateway</body></html>'

const id = (...parts: string[]): string =>
  createHash('sha256').update(parts.join('\u0000')).digest('base64url').slice(0, 27)

function send (res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  // WeChat answers JSON as text/plain; clients must parse regardless of the header.
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** What a handler decides; the server records it in `calls` and sends it. */
interface Answer {
  errcode: number
  body: unknown
  status?: number
  code?: string | null
  appid?: string
  delayMs?: number
}

type Handler = (query: URLSearchParams, body: Buffer) => Answer

function fail (errcode: number, errmsg: string, more: Partial<Answer> = {}): Answer {
  return { errcode, body: { errcode, errmsg: `${errmsg}, rid: ${randomBytes(6).toString('hex')}` }, ...more }
}

function userOf (code: string): string {
  const dot = code.indexOf('.')
  return dot === -1 ? code : code.slice(0, dot)
}

/** A Chinese mobile number derived from the user, so tests can predict it. */
function phoneOf (user: string): PhoneNumber {
  const n = createHash('sha256').update(`phone\u0000${user}`).digest().readBigUInt64BE(0) % 1_000_000_000n
  const number = `13${n.toString().padStart(9, '0')}`
  return { phoneNumber: number, purePhoneNumber: number, countryCode: '86' }
}

/** WeChat's signature for checksession: the key is the session_key string's bytes, not its decoded bytes. */
const sessionSignature = (sessionKey: string): string =>
  createHmac('sha256', Buffer.from(sessionKey, 'utf8')).update('').digest('hex')

function parseObject (body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** Calls `done` once with the body, or with null as soon as it is known to exceed `limit`. */
function readBody (req: IncomingMessage, limit: number, done: (body: Buffer | null) => void): void {
  if (Number(req.headers['content-length']) > limit) {
    done(null)
    return
  }
  const chunks: Buffer[] = []
  let size = 0
  req.on('data', (chunk: Buffer) => {
    size += chunk.length
    if (size <= limit) chunks.push(chunk)
    else if (size - chunk.length <= limit) done(null)
  })
  req.on('end', () => { if (size <= limit) done(Buffer.concat(chunks)) })
}

function parseTarget (target: string | undefined): URL | null {
  try {
    return new URL(target ?? '/', 'http://simulator')
  } catch {
    return null
  }
}

interface IssuedToken {
  appid: string
  expiresAt: number
  /** Set by force_refresh: the end of the overlap with the token that replaced this one. */
  replacedUntil: number | null
  revoked: boolean
}

type TokenCheck = { appid: string } | { errcode: number, errmsg: string }

/** access_tokens as stable_token hands them out: one current token per appid. */
function accessTokens (ttlSec: number, now: () => number) {
  const tokens = new Map<string, IssuedToken>()
  const current = new Map<string, string>()

  function issue (appid: string): { token: string, expiresIn: number } {
    const token = randomBytes(96).toString('base64url')
    tokens.set(token, { appid, expiresAt: now() + ttlSec * 1000, replacedUntil: null, revoked: false })
    current.set(appid, token)
    return { token, expiresIn: ttlSec }
  }

  function stable (appid: string, forceRefresh: boolean): { token: string, expiresIn: number } {
    const token = current.get(appid) ?? ''
    const held = tokens.get(token)
    if (held === undefined) return issue(appid)
    const left = held.expiresAt - now()
    if (forceRefresh) {
      if (left > TOKEN_OVERLAP_MS) held.replacedUntil = now() + TOKEN_OVERLAP_MS
      return issue(appid)
    }
    // The previous token is not touched: it stays valid until its own expiry.
    return left > TOKEN_OVERLAP_MS ? { token, expiresIn: Math.floor(left / 1000) } : issue(appid)
  }

  function check (token: string): TokenCheck {
    const held = tokens.get(token)
    if (held === undefined || held.revoked || (held.replacedUntil !== null && now() >= held.replacedUntil)) {
      return { errcode: 40001, errmsg: 'invalid credential, access_token is invalid or not latest' }
    }
    if (now() >= held.expiresAt) return { errcode: 42001, errmsg: 'access_token expired' }
    return { appid: held.appid }
  }

  function invalidate (appid: string): void {
    for (const held of tokens.values()) if (held.appid === appid) held.revoked = true
    current.delete(appid)
  }

  return { stable, check, invalidate, currentOf: (appid: string) => current.get(appid) }
}

function appsFrom (opts: SimulatorOptions): SimulatorApp[] {
  const apps = opts.apps ?? [{ appid: opts.appid ?? DEV_APPID, secret: opts.secret ?? randomBytes(16).toString('hex') }]
  if (apps.length === 0) throw new Error('apps: give at least one { appid, secret }')
  const seen = new Set<string>()
  for (const { appid, secret } of apps) {
    if (appid === '' || secret === '') throw new Error('apps: every app needs a non-empty appid and secret')
    if (seen.has(appid)) throw new Error(`apps: appid ${appid} is listed twice`)
    seen.add(appid)
  }
  return apps.map(({ appid, secret }) => ({ appid, secret }))
}

export async function startSimulator (opts: SimulatorOptions = {}): Promise<Simulator> {
  const apps = appsFrom(opts)
  const first = apps[0] as SimulatorApp
  const secrets = new Map(apps.map((a) => [a.appid, a.secret]))
  const slowMs = opts.slowMs ?? 30_000
  const stableTokenDelayMs = opts.stableTokenDelayMs ?? 0
  const now = opts.now ?? Date.now
  const tokens = accessTokens(opts.tokenTtlSec ?? 7200, now)
  const usedCodes = new Set<string>()
  const triedCodes = new Set<string>()
  const usedPhoneCodes = new Set<string>()
  const triedPhoneCodes = new Set<string>()
  // appid -> openid -> the session_key last issued; openids are per appid, so they identify the user.
  const sessionKeys = new Map(apps.map((a) => [a.appid, new Map<string, string>()]))
  const calls: SimulatorCall[] = []
  const pending = new Set<NodeJS.Timeout>()

  const openidOf = (user: string, appid = first.appid): string => `o${id(appid, 'openid', user)}`
  const unionidOf = (user: string): string => `u${id('unionid', user)}`
  const sessionKeyOf = (user: string, appid = first.appid): string | undefined =>
    sessionKeys.get(appid)?.get(openidOf(user, appid))
  const unixNow = (): number => Math.floor(now() / 1000)

  function issueSessionKey (appid: string, openid: string): string {
    const sessionKey = randomBytes(16).toString('base64')
    sessionKeys.get(appid)?.set(openid, sessionKey)
    return sessionKey
  }

  function exchangeCode (q: URLSearchParams): Answer {
    const code = q.get('js_code')
    const user = userOf(code ?? '')
    const appid = q.get('appid') ?? ''
    const more = { code, appid: secrets.has(appid) ? appid : undefined }
    if (user === 'garbage') return { errcode: 0, body: GARBAGE, ...more }
    if (q.get('grant_type') !== 'authorization_code') return fail(40002, 'invalid grant_type', more)
    if (!secrets.has(appid)) return fail(40013, 'invalid appid', more)
    if (q.get('secret') !== secrets.get(appid)) return fail(40125, 'invalid appsecret', more)
    if (code === null || code === '') return fail(41008, 'missing code', more)
    if (usedCodes.has(code)) return fail(40163, 'code been used', more)
    if (user === 'invalid' || user === '') return fail(40029, 'invalid code', more)
    if (user === 'risky') return fail(40226, 'high risk user', more)
    if (user === 'limit') return fail(45011, 'api minute-quota reach limit', more)
    if (user === 'busy' && !triedCodes.has(code)) {
      triedCodes.add(code)
      return fail(-1, 'system error', more)
    }
    usedCodes.add(code)
    const openid = openidOf(user, appid)
    const body: Record<string, string> = { session_key: issueSessionKey(appid, openid), openid }
    if (!user.startsWith('nounion')) body.unionid = unionidOf(user)
    return { errcode: 0, body, ...more }
  }

  function code2Session (q: URLSearchParams): Answer {
    const answer = exchangeCode(q)
    return userOf(q.get('js_code') ?? '') === 'slow' ? { ...answer, delayMs: slowMs } : answer
  }

  function stableToken (body: Buffer): Answer {
    const req = parseObject(body)
    if (req === undefined) return fail(47001, 'data format error')
    const appid = typeof req.appid === 'string' && secrets.has(req.appid) ? req.appid : undefined
    if (req.grant_type !== 'client_credential') return fail(40002, 'invalid grant_type', { appid })
    if (appid === undefined) return fail(40013, 'invalid appid')
    if (req.secret !== secrets.get(appid)) return fail(40125, 'invalid appsecret', { appid })
    const { token, expiresIn } = tokens.stable(appid, req.force_refresh === true)
    return { errcode: 0, appid, body: { access_token: token, expires_in: expiresIn } }
  }

  /** Runs `handler` for the appid the query's access_token belongs to. */
  const withAccessToken = (handler: (appid: string, q: URLSearchParams, body: Buffer) => Answer): Handler =>
    (q, body) => {
      const token = q.get('access_token') ?? ''
      if (token === '') return fail(41001, 'access_token missing')
      const checked = tokens.check(token)
      if ('errcode' in checked) return fail(checked.errcode, checked.errmsg)
      return handler(checked.appid, q, body)
    }

  /** The openid whose current session_key signed the query, if any. */
  function signedOpenid (appid: string, q: URLSearchParams): string | undefined {
    const openid = q.get('openid') ?? ''
    const sessionKey = sessionKeys.get(appid)?.get(openid)
    if (sessionKey === undefined || q.get('signature') !== sessionSignature(sessionKey)) return undefined
    return openid
  }

  function sessionCheck (appid: string, q: URLSearchParams, reset: boolean): Answer {
    if (q.get('sig_method') !== 'hmac_sha256') return fail(40097, 'invalid args', { appid })
    const openid = signedOpenid(appid, q)
    if (openid === undefined) return fail(87009, 'invalid signature', { appid })
    if (!reset) return { errcode: 0, appid, body: { errcode: 0, errmsg: 'ok' } }
    return { errcode: 0, appid, body: { errcode: 0, errmsg: 'ok', openid, session_key: issueSessionKey(appid, openid) } }
  }

  function phoneNumber (appid: string, body: Buffer): Answer {
    const req = parseObject(body)
    if (req === undefined) return fail(47001, 'data format error', { appid })
    const code = typeof req.code === 'string' ? req.code : null
    const user = userOf(code ?? '')
    const more = { appid, code }
    if (code === null || user === '' || user === 'invalid' || usedPhoneCodes.has(code)) return fail(40029, 'invalid code', more)
    if (user === 'limit') return fail(45011, 'api minute-quota reach limit', more)
    if (user === 'busy' && !triedPhoneCodes.has(code)) {
      triedPhoneCodes.add(code)
      return fail(-1, 'system error', more)
    }
    usedPhoneCodes.add(code)
    const phoneInfo = { ...phoneOf(user), watermark: { timestamp: unixNow(), appid } }
    return { errcode: 0, ...more, body: { errcode: 0, errmsg: 'ok', phone_info: phoneInfo } }
  }

  function encryptFor (user: string, data: Record<string, unknown>, appid = first.appid): EncryptedData {
    const sessionKey = sessionKeyOf(user, appid)
    if (sessionKey === undefined) throw new Error(`user ${JSON.stringify(user)} has no session_key in ${appid}: log in first`)
    const iv = randomBytes(16)
    const plain = JSON.stringify({ ...data, watermark: { timestamp: unixNow(), appid } })
    const cipher = createCipheriv('aes-128-cbc', Buffer.from(sessionKey, 'base64'), iv)
    const encrypted = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    const { watermark: _ignored, ...clear } = data
    const rawData = JSON.stringify(clear)
    const signature = createHash('sha1').update(rawData + sessionKey, 'utf8').digest('hex')
    return { encryptedData: encrypted.toString('base64'), iv: iv.toString('base64'), rawData, signature }
  }

  function devEncrypt (q: URLSearchParams, body: Buffer): Answer {
    const user = q.get('user') ?? ''
    const appid = q.get('appid') ?? first.appid
    const more = { appid: secrets.has(appid) ? appid : undefined }
    const data = parseObject(body)
    if (data === undefined) return fail(47001, 'data format error: the body must be a JSON object', { ...more, status: 400 })
    if (sessionKeyOf(user, appid) === undefined) {
      return fail(40400, `user ${JSON.stringify(user)} has no session_key in ${appid}: log in first`, { ...more, status: 404 })
    }
    return { errcode: 0, ...more, body: encryptFor(user, data, appid) }
  }

  const routes = new Map<string, Handler>([
    ['GET /sns/jscode2session', code2Session],
    ['POST /cgi-bin/stable_token', (_q, body) => ({ ...stableToken(body), delayMs: stableTokenDelayMs })],
    ['GET /wxa/checksession', withAccessToken((appid, q) => sessionCheck(appid, q, false))],
    ['GET /wxa/resetusersessionkey', withAccessToken((appid, q) => sessionCheck(appid, q, true))],
    ['POST /wxa/business/getuserphonenumber', withAccessToken((appid, _q, body) => phoneNumber(appid, body))],
    ['POST /dev/encrypt', devEncrypt]
  ])

  function respond (res: ServerResponse, path: string, answer: Answer): void {
    const { errcode, code = null, appid } = answer
    calls.push(appid === undefined ? { path, code, errcode } : { path, code, errcode, appid })
    const status = answer.status ?? 200
    if (answer.delayMs === undefined) {
      send(res, status, answer.body)
      return
    }
    const t = setTimeout(() => { pending.delete(t); send(res, status, answer.body) }, answer.delayMs)
    pending.add(t)
  }

  function run (res: ServerResponse, path: string, handler: Handler, q: URLSearchParams, body: Buffer): void {
    let answer: Answer
    try {
      answer = handler(q, body)
    } catch {
      // A bug or a throwing test clock must cost one answer, never the process.
      answer = fail(-1, 'system error', { status: 500 })
    }
    respond(res, path, answer)
  }

  function handle (req: IncomingMessage, res: ServerResponse): void {
    // A client that goes away mid-body emits an error nobody else listens to.
    req.on('error', () => {})
    const url = parseTarget(req.url)
    const handler = url === null ? undefined : routes.get(`${req.method ?? ''} ${url.pathname}`)
    if (url === null || handler === undefined) {
      send(res, 404, { errcode: 404, errmsg: 'not found' })
      return
    }
    if (req.method !== 'POST') {
      run(res, url.pathname, handler, url.searchParams, Buffer.alloc(0))
      return
    }
    readBody(req, MAX_BODY_BYTES, (body) => {
      if (body !== null) {
        run(res, url.pathname, handler, url.searchParams, body)
        return
      }
      calls.push({ path: url.pathname, code: null, errcode: 45002 })
      // Closing tells the client to stop sending the rest; Node discards what still arrives.
      send(res, 413, { errcode: 45002, errmsg: `content size out of limit (${MAX_BODY_BYTES} bytes)` }, { connection: 'close' })
    })
  }

  const server: Server = createServer(handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve)
  })
  const addr = server.address() as AddressInfo
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address

  return {
    url: `http://${host}:${addr.port}`,
    appid: first.appid,
    secret: first.secret,
    apps: apps.map((a) => ({ ...a })),
    calls,
    openidOf,
    unionidOf,
    sessionKeyOf,
    phoneOf,
    accessTokenOf: (appid = first.appid) => tokens.currentOf(appid),
    invalidateAccessToken: (appid = first.appid) => tokens.invalidate(appid),
    encryptFor,
    async close () {
      for (const t of pending) clearTimeout(t)
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
