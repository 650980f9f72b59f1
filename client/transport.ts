// Requests through the platform's request(): a promise, JSON bodies, and the waits the gateway asks
// for (429 with retry-after once, 503/504 a bounded number of times with jitter).
import { WechatAuthError, errorOf, headerOf } from './errors.js'
import type { Platform, PlatformResponse } from './types.js'

export interface Send {
  url: string
  method: string
  data?: unknown
  header?: Record<string, string>
  timeout?: number
}

export interface TransportOptions {
  platform: Platform
  baseUrl: string
  retries: number
  maxRetryAfter: number
  sleep: (ms: number) => Promise<void>
  random: () => number
}

export const ok = (res: PlatformResponse): boolean => res.statusCode >= 200 && res.statusCode < 300

export function createTransport (o: TransportOptions) {
  const base = o.baseUrl.replace(/\/+$/, '')

  /** One platform request: its answer whatever the status, or CLIENT_NETWORK when none came. */
  const once = (req: Send): Promise<PlatformResponse> => new Promise((resolve, reject) => {
    const header: Record<string, string> = Object.assign({}, req.header)
    if (req.data !== undefined) header['content-type'] = 'application/json'
    o.platform.request({
      url: /^https?:\/\//.test(req.url) ? req.url : base + req.url,
      method: req.method,
      data: req.data,
      header,
      timeout: req.timeout,
      dataType: 'json',
      success: resolve,
      fail: (err) => reject(new WechatAuthError('CLIENT_NETWORK', (err && err.errMsg) || 'request failed'))
    })
  })

  /** A request, with the gateway's 429 waited out once (up to maxRetryAfter) and 503/504 retried. */
  async function send (req: Send): Promise<PlatformResponse> {
    let waited = false
    for (let retry = 0; ; retry++) {
      const res = await once(req)
      const after = Number(headerOf(res, 'retry-after'))
      if (res.statusCode === 429 && !waited && after >= 0 && after <= o.maxRetryAfter) {
        waited = true
        await o.sleep(after * 1000)
      } else if ((res.statusCode === 503 || res.statusCode === 504) && retry < o.retries) {
        // Exponential with full jitter, so clients told the same thing at once do not come back together.
        await o.sleep(250 * 2 ** retry * (0.5 + o.random()))
      } else {
        return res
      }
    }
  }

  /** The data of a 2xx answer; anything else is thrown as a WechatAuthError with its code. */
  async function call<T> (req: Send): Promise<T> {
    const res = await send(req)
    if (!ok(res)) throw errorOf(res)
    return res.data as T
  }

  return { send, call }
}
