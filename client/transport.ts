// Requests through the platform's request(): a promise, JSON bodies, and the waits the gateway asks
// for (a retry-after of 429 or 503 once, 503/504 a bounded number of times with jitter, for requests
// safe to repeat).
import { WechatAuthError, errorOf, headerOf } from './errors.js'
import type { Platform, PlatformResponse } from './types.js'

export interface Send {
  url: string
  method: string
  data?: unknown
  header?: Record<string, string>
  timeout?: number
  /** Retry a 503 or 504 although the method is not idempotent: the gateway's login and refresh are safe to repeat. */
  retry?: boolean
}

// Methods a 504 (which says nothing of whether the work was done) may be retried for.
const IDEMPOTENT = /^(GET|HEAD|OPTIONS|PUT|DELETE)$/i

export interface TransportOptions {
  platform: Platform
  baseUrl: string
  origins?: string[]
  retries: number
  maxRetryAfter: number
  sleep: (ms: number) => Promise<void>
  random: () => number
}

export const ok = (res: PlatformResponse): boolean => res.statusCode >= 200 && res.statusCode < 300

// A URL's scheme, in any case (what follows it is not a path under baseUrl), and its authority, which
// runs to the first / ? or #: a userinfo (`@`) or a backslash stays in it, so `https://gateway\@elsewhere`
// is not the gateway's origin.
const ABSOLUTE = /^[a-z][a-z\d+.-]*:(\/\/[^/?#]*)?/i
/** Scheme and authority, lowercased. */
const originOf = (url: string): string => (url.match(ABSOLUTE) || [url])[0].toLowerCase()

export function createTransport (o: TransportOptions) {
  const base = o.baseUrl.replace(/\/+$/, '')
  const origins = [base].concat(o.origins || []).map(originOf)
  /** The URL a request goes to: an absolute one as it is, a path under baseUrl (with its leading `/`). */
  const target = (url: string): string => ABSOLUTE.test(url) ? url : base + (url[0] === '/' ? '' : '/') + url
  /** Whether a URL is the gateway's origin or one of options.origins: the only ones the Bearer token goes to. */
  const trusted = (url: string): boolean => !ABSOLUTE.test(url) || origins.indexOf(originOf(url)) >= 0

  /** One platform request: its answer whatever the status, or CLIENT_NETWORK when none came. */
  const once = (req: Send): Promise<PlatformResponse> => new Promise((resolve, reject) => {
    const header: Record<string, string> = Object.assign({}, req.header)
    if (req.data !== undefined && headerOf(header, 'content-type') === undefined) header['content-type'] = 'application/json'
    o.platform.request({
      url: target(req.url),
      method: req.method,
      data: req.data,
      header,
      timeout: req.timeout,
      dataType: 'json',
      success: resolve,
      fail: (err) => reject(new WechatAuthError('CLIENT_NETWORK', (err && err.errMsg) || 'request failed'))
    })
  })

  /**
   * A request, with a retry-after (429, or 503 of a request safe to repeat) waited out once when at most
   * maxRetryAfter, and 503/504 without one retried with backoff; anything else is the answer.
   */
  async function send (req: Send): Promise<PlatformResponse> {
    const repeatable = req.retry || IDEMPOTENT.test(req.method)
    let waited = false
    for (let n = 0; ; n++) {
      const res = await once(req)
      const status = res.statusCode
      const after = Number(headerOf(res.header, 'retry-after'))
      const busy = (status === 503 || status === 504) && repeatable && n < o.retries
      // Jitter, so clients told the same thing at once do not come back together.
      let ms = NaN
      if (status === 429 || (busy && after >= 0)) {
        if (!waited && after <= o.maxRetryAfter) ms = (after + o.random()) * 1000
        waited = true
      } else if (busy) {
        ms = 250 * 2 ** n * (0.5 + o.random())
      }
      if (!(ms >= 0)) return res
      await o.sleep(ms)
    }
  }

  /** The data of a 2xx answer; anything else is thrown as a WechatAuthError with its code. */
  async function call<T> (req: Send): Promise<T> {
    const res = await send(req)
    if (!ok(res)) throw errorOf(res)
    return res.data as T
  }

  return { send, call, trusted }
}
