// The HTTP client for WeChat's server API. It knows nothing about Fastify, tokens or sessions.
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici'
import {
  WxBadResponseError, WxCredentialsRejectedError, WxPhoneCodeInvalidError, WxSessionKeyStaleError, WxTimeoutError, WxUnavailableError
} from './errors.js'
import type { PhoneResponse } from './schemas.js'
import { sessionKeySignature } from './wechat-crypto.js'
import { TRANSIENT_ERRCODES, errorForErrcode } from './wechat-errors.js'
import type { Logger } from './logger.js'

export interface WeChatClientOptions {
  appid: string
  secret: string
  apiBase: string
  /** Deadline for one whole call, retry included. */
  timeoutMs: number
  log: Pick<Logger, 'warn' | 'error'>
  /** A connection pool shared by the clients of several mini programs; left open by close(). */
  dispatcher?: Dispatcher
}

export interface Code2SessionResult {
  openid: string
  unionid?: string
  sessionKey: string
}

export interface StableToken {
  accessToken: string
  /** Seconds the token stays valid, as WeChat said. */
  expiresIn: number
}

/** What getuserphonenumber confirms; the phone route answers exactly this (one schema for both). */
export type PhoneNumber = PhoneResponse

/** How one call treats particular errcodes: an answer to return, or an error to throw. */
type Overrides = Record<number, () => Error | 'return'>

const MIN_RETRY_BUDGET_MS = 100
// What WeChat's ids and keys look like; anything else is not stored (values are packed in Redis).
const ID = /^[A-Za-z0-9_-]{1,64}$/
const BASE64 = /^[A-Za-z0-9+/]{1,64}={0,2}$/
const ACCESS_TOKEN = /^[\x21-\x7e]{16,2048}$/
const PHONE = /^[0-9+ -]{1,32}$/
// WeChat hands out a new stable token in the last 5 minutes of the old one; a shorter life is not
// a token worth keeping (the manager stops handing one out in its last 30 s).
const MIN_TOKEN_LIFE_S = 60
// WeChat's answers are a few hundred bytes; anything far larger is not WeChat.
const MAX_BODY_BYTES = 64 * 1024

class Transient extends Error {
  constructor (readonly final: Error, readonly detail: Record<string, unknown>) { super(final.message) }
}

export function createWeChatClient (opts: WeChatClientOptions) {
  const base = opts.apiBase.replace(/\/+$/, '')
  const dispatcher = opts.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 128 })

  /** errmsg is WeChat's text; it may echo what we sent, so scrub the secret and whatever else we sent. */
  const scrub = (text: unknown, secrets: string[]): string => {
    let out = String(text ?? '').split(opts.secret).join('[secret]')
    for (const s of secrets) if (s !== '') out = out.split(s).join('[redacted]')
    return out.slice(0, 200)
  }

  interface Call {
    path: string
    query: Record<string, string>
    /** A JSON body makes it a POST. */
    body?: Record<string, unknown>
    /** Values sent that must not appear in a log line (codes, tokens, signatures). */
    secrets: string[]
    overrides?: Overrides
    /** A caller's own deadline (ms epoch), when earlier than timeoutMs from now. */
    deadline?: number
  }

  const { origin, pathname } = new URL(base)
  const basePath = pathname.replace(/\/+$/, '')

  /**
   * One HTTP exchange, through undici's dispatch API: no response stream, no AbortSignal, one
   * timer. request() with an AbortSignal.timeout and an async-iterated body cost ~140 µs of CPU per
   * call, this ~70 µs with the response checks (`npm run bench:micro`). Settles once: with the body,
   * or with the first error.
   */
  async function send (c: Call, deadline: number): Promise<{ status: number, text: string }> {
    const remaining = deadline - Date.now()
    const query = new URLSearchParams(c.query).toString()
    const request: Dispatcher.DispatchOptions = {
      origin,
      path: `${basePath}${c.path}${query === '' ? '' : `?${query}`}`,
      ...(c.body === undefined
        ? { method: 'GET' as const }
        : { method: 'POST' as const, body: JSON.stringify(c.body), headers: { 'content-type': 'application/json' } }),
      headersTimeout: remaining,
      bodyTimeout: remaining
    }
    return await new Promise((resolve, reject) => {
      let status = 0
      let size = 0
      const chunks: Buffer[] = []
      let abort: ((err: Error) => void) | undefined
      let settled = false
      const settle = (err: Error | null, text?: string): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (err !== null) reject(err)
        else resolve({ status, text: text ?? '' })
      }
      // Covers the whole exchange, waiting for a pooled connection included.
      const timer = setTimeout(() => {
        const err = new WxTimeoutError()
        abort?.(err)
        settle(err)
      }, remaining)
      const start = (abortRequest: (err: Error) => void): void => {
        abort = abortRequest
        if (settled) abortRequest(new WxTimeoutError()) // the deadline passed while it waited for a connection
      }
      const data = (chunk: Buffer): boolean => {
        size += chunk.length
        if (size > MAX_BODY_BYTES) {
          const err = new WxBadResponseError(`HTTP ${status}, body over ${MAX_BODY_BYTES} bytes`)
          abort?.(err)
          settle(err)
          return false
        }
        chunks.push(chunk)
        return true
      }
      const end = (): void => { settle(null, Buffer.concat(chunks, size).toString('utf8')) }
      // undici 7 calls the on{Request,Response}* methods. A host's dispatcher may be an undici 6 one
      // (Node 20's own fetch dispatcher is), which only knows on{Connect,Headers,Data,Complete,Error}.
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (ctl) => { start((err) => { ctl.abort(err) }) },
        onResponseStart: (_ctl, statusCode) => { status = statusCode },
        onResponseData: (_ctl, chunk) => { data(chunk) },
        onResponseEnd: end,
        onResponseError: (_ctl, err) => { settle(err) },
        onConnect: (abortRequest) => { start(abortRequest) },
        onHeaders: (statusCode) => { status = statusCode; return true },
        onData: data,
        onComplete: end,
        onError: (err) => { settle(err) }
      }
      dispatcher.dispatch(request, handler) // reports its errors to the handler (a destroyed Agent, say)
    })
  }

  async function attempt (c: Call, deadline: number): Promise<Record<string, unknown>> {
    let status: number
    let text: string
    try {
      ({ status, text } = await send(c, deadline))
    } catch (err) {
      if (err instanceof WxBadResponseError || err instanceof WxTimeoutError) throw err
      const e = err as Error & { code?: string }
      if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) throw new WxTimeoutError()
      // Network errors carry no URL; keep only their code and message for the log.
      throw new Transient(new WxUnavailableError({ cause: new Error(`${e.code ?? e.name}: ${e.message}`) }), { network: e.code ?? e.name })
    }
    if (status >= 500) throw new Transient(new WxUnavailableError(), { httpStatus: status })
    let body: unknown
    try {
      body = JSON.parse(text) // WeChat answers JSON as text/plain: ignore the content type
    } catch {
      throw new WxBadResponseError(`HTTP ${status}, not JSON`)
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new WxBadResponseError(`HTTP ${status}, not an object`)
    const obj = body as Record<string, unknown>
    const errcode = obj.errcode === undefined ? 0 : Number(obj.errcode)
    if (errcode !== 0) {
      const override = c.overrides?.[errcode]?.()
      if (override === 'return') return obj
      const detail = { path: c.path, errcode, errmsg: scrub(obj.errmsg, c.secrets) }
      if (TRANSIENT_ERRCODES.has(errcode)) throw new Transient(errorForErrcode(errcode), detail)
      const error = override ?? errorForErrcode(errcode)
      if ((error as { code?: string }).code === 'WX_CREDENTIALS_REJECTED') opts.log.error(detail, 'WeChat rejected the gateway credentials')
      else opts.log.warn(detail, 'WeChat answered with an error')
      throw error
    }
    return obj
  }

  /** Calls WeChat with one retry (with jitter) for transient failures, all inside one deadline. */
  async function call (c: Call): Promise<Record<string, unknown>> {
    const deadline = Math.min(Date.now() + opts.timeoutMs, c.deadline ?? Infinity)
    if (deadline - Date.now() < MIN_RETRY_BUDGET_MS) throw new WxTimeoutError()
    try {
      return await attempt(c, deadline)
    } catch (err) {
      if (!(err instanceof Transient)) throw err
      const jitter = 50 + Math.floor(Math.random() * 150)
      if (deadline - Date.now() - jitter < MIN_RETRY_BUDGET_MS) {
        opts.log.warn({ ...err.detail, retried: false }, 'WeChat call failed')
        throw err.final
      }
      await sleep(jitter)
      try {
        return await attempt(c, deadline)
      } catch (err2) {
        if (!(err2 instanceof Transient)) throw err2
        opts.log.warn({ ...err2.detail, retried: true }, 'WeChat call failed after a retry')
        throw err2.final
      }
    }
  }

  /** The query and secrets of a call made with an access_token and a session_key signature. */
  function signed (accessToken: string, openid: string, sessionKey: string): Pick<Call, 'query' | 'secrets'> {
    const signature = sessionKeySignature(sessionKey)
    return {
      query: { access_token: accessToken, openid, signature, sig_method: 'hmac_sha256' },
      secrets: [accessToken, signature, sessionKey]
    }
  }

  return {
    appid: opts.appid,

    /** Exchanges a wx.login() code for the user's openid, unionid and session_key. */
    async code2Session (code: string): Promise<Code2SessionResult> {
      const body = await call({
        path: '/sns/jscode2session',
        query: { appid: opts.appid, secret: opts.secret, js_code: code, grant_type: 'authorization_code' },
        secrets: [code]
      })
      const { openid, session_key: sessionKey, unionid } = body
      if (typeof openid !== 'string' || !ID.test(openid) || typeof sessionKey !== 'string' || !BASE64.test(sessionKey)) {
        throw new WxBadResponseError('no valid openid or session_key')
      }
      if (typeof unionid === 'string' && unionid !== '') {
        if (!ID.test(unionid)) throw new WxBadResponseError('invalid unionid')
        return { openid, unionid, sessionKey }
      }
      return { openid, sessionKey }
    },

    /**
     * A stable access_token (cgi-bin/stable_token) in normal mode: WeChat answers the current token
     * while it has time left and a new one near its end, the old one staying valid meanwhile.
     * force_refresh is limited to 20 a day and 30 s apart: only for an operator's explicit call.
     */
    async stableToken (forceRefresh = false, deadline?: number): Promise<StableToken> {
      const body = await call({
        deadline,
        path: '/cgi-bin/stable_token',
        query: {},
        body: { grant_type: 'client_credential', appid: opts.appid, secret: opts.secret, force_refresh: forceRefresh },
        secrets: [],
        // For this call 40001 means a wrong secret, not a stale access_token.
        overrides: { 40001: () => new WxCredentialsRejectedError('40001') }
      })
      const { access_token: accessToken, expires_in: expiresIn } = body
      if (typeof accessToken !== 'string' || !ACCESS_TOKEN.test(accessToken) ||
        typeof expiresIn !== 'number' || !Number.isInteger(expiresIn) || expiresIn < MIN_TOKEN_LIFE_S || expiresIn > 86400 * 31) {
        throw new WxBadResponseError('no valid access_token or expires_in')
      }
      return { accessToken, expiresIn }
    },

    /** Whether WeChat still holds `sessionKey` as the user's session_key (wxa/checksession). */
    async checkSessionKey (accessToken: string, openid: string, sessionKey: string, deadline?: number): Promise<boolean> {
      const body = await call({ path: '/wxa/checksession', ...signed(accessToken, openid, sessionKey), overrides: { 87009: () => 'return' }, deadline })
      return Number(body.errcode ?? 0) === 0
    },

    /** Has WeChat issue a new session_key for the user; needs the current one (wxa/resetusersessionkey). */
    async resetSessionKey (accessToken: string, openid: string, sessionKey: string, deadline?: number): Promise<{ openid: string, sessionKey: string }> {
      const body = await call({
        deadline,
        path: '/wxa/resetusersessionkey',
        ...signed(accessToken, openid, sessionKey),
        overrides: { 87009: () => new WxSessionKeyStaleError() }
      })
      const { openid: id, session_key: newKey } = body
      if (typeof id !== 'string' || id !== openid || typeof newKey !== 'string' || !BASE64.test(newKey)) {
        throw new WxBadResponseError('no valid openid or session_key')
      }
      return { openid: id, sessionKey: newKey }
    },

    /** The phone number behind a getPhoneNumber button's code (wxa/business/getuserphonenumber). */
    async getPhoneNumber (accessToken: string, code: string, deadline?: number): Promise<PhoneNumber> {
      const body = await call({
        deadline,
        path: '/wxa/business/getuserphonenumber',
        query: { access_token: accessToken },
        body: { code },
        secrets: [accessToken, code],
        overrides: { 40029: () => new WxPhoneCodeInvalidError(), 40163: () => new WxPhoneCodeInvalidError() }
      })
      const info = body.phone_info as Record<string, unknown> | undefined
      const { phoneNumber, purePhoneNumber, countryCode } = info ?? {}
      const watermark = info?.watermark as { appid?: unknown } | undefined
      if (typeof phoneNumber !== 'string' || !PHONE.test(phoneNumber) || typeof purePhoneNumber !== 'string' ||
        !PHONE.test(purePhoneNumber) || typeof countryCode !== 'string' || !PHONE.test(countryCode)) {
        throw new WxBadResponseError('no valid phone_info')
      }
      if (watermark?.appid !== opts.appid) throw new WxBadResponseError('phone_info of another mini program')
      return { phoneNumber, purePhoneNumber, countryCode }
    },

    async close (): Promise<void> {
      if (opts.dispatcher === undefined) await dispatcher.destroy()
    }
  }
}

export type WeChatClient = ReturnType<typeof createWeChatClient>
