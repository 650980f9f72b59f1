// WeChat's wxacode.getUnlimited: a mini-program code image whose `scene` is a QR login's id. WeChat
// answers the image's bytes on success and JSON `{ errcode, errmsg }` on error, whatever the status:
// the content type tells them apart. The access_token goes in the query string only (in the body
// WeChat answers "data format error"); the URL is never logged.
import { request, type Dispatcher } from 'undici'
import { WxBadResponseError, WxQrPageRejectedError, WxRateLimitedError, WxTimeoutError, WxUnavailableError } from './errors.js'
import type { Logger } from './logger.js'
import { errorForErrcode } from './wechat-errors.js'
import { undiciTimedOut } from './wechat-transport.js'
import { reportedCall } from './diagnostics.js'

// A code image is some tens of KiB at the default width.
const MAX_IMAGE_BYTES = 2 * 1024 * 1024

export interface WxacodeOptions {
  apiBase: string
  dispatcher: Dispatcher
  timeoutMs: number
  log: Pick<Logger, 'warn'>
}

export interface UnlimitedCode {
  scene: string
  /** The page opened, without a leading '/'; '' the home page. */
  page: string
  envVersion: 'release' | 'trial' | 'develop'
}

/** WeChat's JSON error answer as a coded error: 41030 a page not released, 45009 the call quota, the rest as for every call. */
function errorOf (errcode: number): Error {
  if (errcode === 41030) return new WxQrPageRejectedError(String(errcode))
  if (errcode === 45009) return new WxRateLimitedError()
  return errorForErrcode(errcode)
}

/** The call failing (its connection, its deadline), before its answer or half-way through its body: WX_TIMEOUT or WX_UNAVAILABLE. */
function callFailure (err: unknown): Error {
  if (undiciTimedOut(err) || (err as Error).name === 'TimeoutError') return new WxTimeoutError()
  return new WxUnavailableError({ cause: new Error(`${(err as { code?: string }).code ?? (err as Error).name}`) })
}

/** The answer's bytes, at most MAX_IMAGE_BYTES (else WX_BAD_RESPONSE); a body cut off or late is the call failing. */
async function bodyOf (res: Dispatcher.ResponseData): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > MAX_IMAGE_BYTES) break
      chunks.push(chunk as Buffer)
    }
  } catch (err) {
    throw callFailure(err)
  }
  if (size <= MAX_IMAGE_BYTES) return Buffer.concat(chunks)
  res.body.destroy()
  throw new WxBadResponseError(`HTTP ${res.statusCode}, body over ${MAX_IMAGE_BYTES} bytes`)
}

export function createWxacode (opts: WxacodeOptions) {
  const url = `${opts.apiBase.replace(/\/+$/, '')}/wxa/getwxacodeunlimit`

  /** The PNG (or JPEG) bytes of a mini-program code for `code.scene`, made with `accessToken`; reported (lib/diagnostics.ts). */
  return async function getUnlimited (accessToken: string, code: UnlimitedCode): Promise<{ bytes: Buffer, contentType: string }> {
    return await reportedCall('/wxa/getwxacodeunlimit', async () => await fetchUnlimited(accessToken, code))
  }

  async function fetchUnlimited (accessToken: string, code: UnlimitedCode): Promise<{ bytes: Buffer, contentType: string }> {
    const body = { scene: code.scene, ...(code.page === '' ? {} : { page: code.page }), check_path: code.envVersion === 'release', env_version: code.envVersion }
    let res: Dispatcher.ResponseData
    try {
      res = await request(`${url}?access_token=${encodeURIComponent(accessToken)}`, {
        method: 'POST',
        dispatcher: opts.dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        signal: AbortSignal.timeout(opts.timeoutMs)
      })
    } catch (err) {
      throw callFailure(err)
    }
    const bytes = await bodyOf(res)
    const contentType = String(res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
    if (res.statusCode >= 500) throw new WxUnavailableError()
    if (contentType.startsWith('image/')) return { bytes, contentType }
    let errcode: number
    try {
      errcode = Number((JSON.parse(bytes.toString('utf8')) as { errcode?: unknown }).errcode)
    } catch {
      throw new WxBadResponseError(`HTTP ${res.statusCode}, neither an image nor JSON`)
    }
    if (!Number.isInteger(errcode) || errcode === 0) throw new WxBadResponseError(`HTTP ${res.statusCode}, no image and no errcode`)
    opts.log.warn({ path: '/wxa/getwxacodeunlimit', errcode }, 'WeChat answered with an error')
    throw errorOf(errcode)
  }
}

export type Wxacode = ReturnType<typeof createWxacode>
