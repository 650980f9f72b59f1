// How calls reach WeChat's server API: one undici dispatch per attempt, one deadline for the whole
// call, one retry for transient failures, errcodes mapped to coded errors, and what WeChat echoes
// scrubbed before it is logged. Which endpoints exist and what they answer: lib/wechat-client.ts.
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici'
import { WxBadResponseError, WxTimeoutError, WxUnavailableError } from './errors.js'
import { TRANSIENT_ERRCODES, errorForErrcode } from './wechat-errors.js'
import { reportedCall } from './diagnostics.js'
import type { Logger } from './logger.js'

export interface WeChatTransportOptions {
  /** The mini program's secret: never logged, even when WeChat echoes it. */
  secret: string
  apiBase: string
  /** Deadline for one whole call, retry included. */
  timeoutMs: number
  log: Pick<Logger, 'warn' | 'error'>
  /** A connection pool shared by the clients of several mini programs; left open by close(). */
  dispatcher?: Dispatcher
}

/** How one call treats particular errcodes: an answer to return, or an error to throw. */
export type Overrides = Record<number, () => Error | 'return'>

export interface WeChatCall {
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

const MIN_RETRY_BUDGET_MS = 100
// WeChat's answers are a few hundred bytes; anything far larger is not WeChat.
const MAX_BODY_BYTES = 64 * 1024

/** A connection pool for WeChat, for one client or shared by several. */
export const createWeChatDispatcher = (): Dispatcher => new Agent({ keepAliveTimeout: 30_000, connections: 128 })

class Transient extends Error {
  constructor (readonly final: Error, readonly detail: Record<string, unknown>) { super(final.message) }
}

/** Where calls go: the API base split for undici, and the pool that carries them. */
interface Target {
  dispatcher: Dispatcher
  origin: string
  basePath: string
}

/**
 * One HTTP exchange, through undici's dispatch API: no response stream, no AbortSignal, one
 * timer. request() with an AbortSignal.timeout and an async-iterated body cost ~140 µs of CPU per
 * call, this ~70 µs with the response checks (`npm run bench:micro`). Settles once: with the body,
 * or with the first error.
 */
async function exchange (target: Target, c: WeChatCall, deadline: number): Promise<{ status: number, text: string }> {
  const remaining = deadline - Date.now()
  const query = new URLSearchParams(c.query).toString()
  const request: Dispatcher.DispatchOptions = {
    origin: target.origin,
    path: `${target.basePath}${c.path}${query === '' ? '' : `?${query}`}`,
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
    target.dispatcher.dispatch(request, handler) // reports its errors to the handler (a destroyed Agent, say)
  })
}

/**
 * The forms a value we sent may come back in: as sent in the query (URLSearchParams: a space is
 * `+`), as encodeURIComponent writes it, both with lower-case hex too, and raw.
 */
function formsOf (value: string): string[] {
  const query = new URLSearchParams({ v: value }).toString().slice(2)
  const component = encodeURIComponent(value)
  const lower = (s: string): string => s.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase())
  return [query, lower(query), component, lower(component), value]
}

/**
 * errmsg is WeChat's text; it may echo what we sent, raw or percent-encoded: scrub the secret and
 * whatever else we sent, in any of those forms, longest first (no form is cut by a shorter one in it).
 */
function scrub (text: unknown, secret: string, sent: string[]): string {
  const marked = (value: string, mark: string): Array<[string, string]> => formsOf(value).map((form) => [form, mark])
  const forms = [...marked(secret, '[secret]'), ...sent.flatMap((s) => marked(s, '[redacted]'))]
    .filter(([form]) => form !== '')
    .sort(([a], [b]) => b.length - a.length)
  let out = String(text ?? '')
  for (const [form, mark] of forms) out = out.split(form).join(mark)
  return out.slice(0, 200)
}

/** Whether undici gave up waiting for WeChat's headers or body: WX_TIMEOUT (wxacode's calls too). */
export const undiciTimedOut = (err: unknown): boolean => err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError

/** One exchange and its answer read: the body, a coded error, or a Transient worth a retry. */
async function attempt (target: Target, opts: WeChatTransportOptions, c: WeChatCall, deadline: number): Promise<Record<string, unknown>> {
  let status: number
  let text: string
  try {
    ({ status, text } = await exchange(target, c, deadline))
  } catch (err) {
    if (err instanceof WxBadResponseError || err instanceof WxTimeoutError) throw err
    const e = err as Error & { code?: string }
    if (undiciTimedOut(err)) throw new WxTimeoutError()
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
  if (errcode === 0) return obj
  const override = c.overrides?.[errcode]?.()
  if (override === 'return') return obj
  const detail = { path: c.path, errcode, errmsg: scrub(obj.errmsg, opts.secret, c.secrets) }
  if (TRANSIENT_ERRCODES.has(errcode)) throw new Transient(errorForErrcode(errcode), detail)
  const error = override ?? errorForErrcode(errcode)
  if ((error as { code?: string }).code === 'WX_CREDENTIALS_REJECTED') opts.log.error(detail, 'WeChat rejected the gateway credentials')
  else opts.log.warn(detail, 'WeChat answered with an error')
  throw error
}

export function createWeChatTransport (opts: WeChatTransportOptions) {
  const dispatcher = opts.dispatcher ?? createWeChatDispatcher()
  const { origin, pathname } = new URL(opts.apiBase.replace(/\/+$/, ''))
  const target: Target = { dispatcher, origin, basePath: pathname.replace(/\/+$/, '') }

  /** Calls WeChat (callOnce) and reports the call's outcome and duration (lib/diagnostics.ts). */
  async function call (c: WeChatCall): Promise<Record<string, unknown>> {
    return await reportedCall(c.path, async () => await callOnce(c))
  }

  /** Calls WeChat with one retry (with jitter) for transient failures, all inside one deadline. */
  async function callOnce (c: WeChatCall): Promise<Record<string, unknown>> {
    const deadline = Math.min(Date.now() + opts.timeoutMs, c.deadline ?? Infinity)
    if (deadline - Date.now() < MIN_RETRY_BUDGET_MS) throw new WxTimeoutError()
    try {
      return await attempt(target, opts, c, deadline)
    } catch (err) {
      if (!(err instanceof Transient)) throw err
      const jitter = 50 + Math.floor(Math.random() * 150)
      if (deadline - Date.now() - jitter < MIN_RETRY_BUDGET_MS) {
        opts.log.warn({ ...err.detail, retried: false }, 'WeChat call failed')
        throw err.final
      }
      await sleep(jitter)
      try {
        return await attempt(target, opts, c, deadline)
      } catch (err2) {
        if (!(err2 instanceof Transient)) throw err2
        opts.log.warn({ ...err2.detail, retried: true }, 'WeChat call failed after a retry')
        throw err2.final
      }
    }
  }

  return {
    call,
    /** Destroys the pool it made; a dispatcher passed in is left open. */
    async close (): Promise<void> {
      if (opts.dispatcher === undefined) await dispatcher.destroy()
    }
  }
}

export type WeChatTransport = ReturnType<typeof createWeChatTransport>
