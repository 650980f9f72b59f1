// The HTTP client for WeChat's server API. It knows nothing about Fastify, tokens or sessions.
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, errors as undiciErrors, request } from 'undici'
import { WxBadResponseError, WxTimeoutError, WxUnavailableError } from './errors.js'
import { CREDENTIAL_ERRCODES, TRANSIENT_ERRCODES, errorForErrcode } from './wechat-errors.js'

export interface WeChatClientOptions {
  appid: string
  secret: string
  apiBase: string
  /** Deadline for one whole call, retry included. */
  timeoutMs: number
  log: Pick<import('fastify').FastifyBaseLogger, 'warn' | 'error'>
}

export interface Code2SessionResult {
  openid: string
  unionid?: string
  sessionKey: string
}

const MIN_RETRY_BUDGET_MS = 100
// What WeChat's ids and keys look like; anything else is not stored (values are packed in Redis).
const ID = /^[A-Za-z0-9_-]{1,64}$/
const BASE64 = /^[A-Za-z0-9+/]{1,64}={0,2}$/
// WeChat's answers are a few hundred bytes; anything far larger is not WeChat.
const MAX_BODY_BYTES = 64 * 1024

class Transient extends Error {
  constructor (readonly final: Error, readonly detail: Record<string, unknown>) { super(final.message) }
}

export function createWeChatClient (opts: WeChatClientOptions) {
  const base = opts.apiBase.replace(/\/+$/, '')
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 128 })

  /** errmsg is WeChat's text; it may echo what we sent, so scrub the secret and the code. */
  const scrub = (text: unknown, code: string): string =>
    String(text ?? '').split(opts.secret).join('[secret]').split(code).join('[code]').slice(0, 200)

  async function attempt (path: string, query: Record<string, string>, code: string, deadline: number): Promise<Record<string, unknown>> {
    const url = `${base}${path}?${new URLSearchParams(query).toString()}`
    const remaining = deadline - Date.now()
    let status: number
    let text: string
    try {
      const res = await request(url, {
        dispatcher,
        method: 'GET',
        signal: AbortSignal.timeout(remaining),
        headersTimeout: remaining,
        bodyTimeout: remaining
      })
      status = res.statusCode
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length
        if (size > MAX_BODY_BYTES) {
          res.body.destroy()
          throw new WxBadResponseError(`HTTP ${status}, body over ${MAX_BODY_BYTES} bytes`)
        }
        chunks.push(chunk)
      }
      text = Buffer.concat(chunks).toString('utf8')
    } catch (err) {
      if (err instanceof WxBadResponseError) throw err
      const e = err as Error & { code?: string }
      if (e.name === 'TimeoutError' || e.name === 'AbortError' ||
        err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
        throw new WxTimeoutError()
      }
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
      const detail = { path, errcode, errmsg: scrub(obj.errmsg, code) }
      if (TRANSIENT_ERRCODES.has(errcode)) throw new Transient(errorForErrcode(errcode), detail)
      if (CREDENTIAL_ERRCODES.has(errcode)) opts.log.error(detail, 'WeChat rejected the gateway credentials')
      else opts.log.warn(detail, 'WeChat answered with an error')
      throw errorForErrcode(errcode)
    }
    return obj
  }

  /** Calls WeChat with one retry (with jitter) for transient failures, all inside one deadline. */
  async function call (path: string, query: Record<string, string>, code: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + opts.timeoutMs
    try {
      return await attempt(path, query, code, deadline)
    } catch (err) {
      if (!(err instanceof Transient)) throw err
      const jitter = 50 + Math.floor(Math.random() * 150)
      if (deadline - Date.now() - jitter < MIN_RETRY_BUDGET_MS) {
        opts.log.warn({ ...err.detail, retried: false }, 'WeChat call failed')
        throw err.final
      }
      await sleep(jitter)
      try {
        return await attempt(path, query, code, deadline)
      } catch (err2) {
        if (!(err2 instanceof Transient)) throw err2
        opts.log.warn({ ...err2.detail, retried: true }, 'WeChat call failed after a retry')
        throw err2.final
      }
    }
  }

  return {
    /** Exchanges a wx.login() code for the user's openid, unionid and session_key. */
    async code2Session (code: string): Promise<Code2SessionResult> {
      const body = await call('/sns/jscode2session', {
        appid: opts.appid, secret: opts.secret, js_code: code, grant_type: 'authorization_code'
      }, code)
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

    async close (): Promise<void> {
      await dispatcher.destroy()
    }
  }
}

export type WeChatClient = ReturnType<typeof createWeChatClient>
