// fastify-wechat-auth/client: the mini-program side of the gateway. One wx.login() + /auth/login in
// flight at a time, one refresh in flight at a time, each reaction to a code taken at most once per
// request, and logins bounded per minute: no answer of the gateway can make it loop.
import { WechatAuthError, codeOf, errorOf } from './errors.js'
import { bearer, createCore, createLogout, singleFlight, type Core } from './core.js'
import { createRefresh } from './refresh.js'
import { ok, type Send } from './transport.js'
import type { ClientOptions, DecryptBody, Me, Phone, PlatformResponse, QrScan, QrState, RequestOptions, Response, ServerErrorCode, Session, StepUpAnswer, Ticket } from './types.js'

export { WechatAuthError } from './errors.js'
export { RELOGIN_CODES } from './core.js'
export type * from './types.js'

const answer = <T>(res: PlatformResponse): Response<T> => ({ statusCode: res.statusCode, data: res.data as T, header: res.header || {} })

type Api = <T>(method: 'GET' | 'POST', path: string, data?: unknown) => Promise<T>

/** The mini program's part of web login (docs/web-login.md). */
const webLogin = (api: Api) => {
  const step = <T>(name: string) => (id: string) => api<T>('POST', `/qr/${encodeURIComponent(id)}/${name}`)
  return {
    /**
     * Web QR login, on the page the code opens (its `scene` is the id): scan() says what is asking
     * (IP, user agent, time) for the confirmation screen, then confirm() or cancel().
     */
    qr: {
      scan: step<QrScan>('scan'),
      confirm: step<QrState>('confirm'),
      cancel: step<QrState>('cancel')
    },
    /** A one-time ticket for a web view or another device of this user (exchanged there for its own session). */
    ticket: (deviceType?: string) => api<Ticket>('POST', '/tickets', deviceType === undefined ? undefined : { deviceType })
  }
}

/**
 * Decrypts encryptedData/iv with the session's session_key; on a stale key, logs the session out at the
 * gateway, logs in again (unless the app logged out meanwhile) and says refetch.
 */
function createDecrypt ({ store, logouts, ensureLogin }: Core, api: Api, close: ReturnType<typeof createLogout>) {
  return async function decrypt<T = Record<string, unknown>> (body: DecryptBody): Promise<T> {
    const since = logouts.n
    try {
      // Only the two fields: what wx.getUserInfo() and the like hand over may be passed as it is.
      return await api<T>('POST', '/wechat/decrypt', { encryptedData: body.encryptedData, iv: body.iv })
    } catch (err) {
      const s = store.get()
      if (codeOf(err) !== 'WX_SESSION_KEY_STALE' || s === null) throw err
      const stale = err as WechatAuthError
      // Logged out at the gateway too: the session would otherwise stay among the user's devices.
      await close({}, stale)
      // Not logged in again when the app logged out meanwhile.
      await ensureLogin(since)
      stale.refetch = true
      throw stale
    }
  }
}

export function createWechatAuthClient (options: ClientOptions) {
  const core = createCore(options)
  const { o, store, send, trusted, end, ensureLogin, withCode, logouts, stillIn } = core
  const { refreshFrom, ready } = createRefresh(core)

  /** An authenticated request, reacting to each code at most once. */
  async function authed (req: Send): Promise<PlatformResponse> {
    const taken: Record<string, boolean> = {}
    const since = logouts.n
    const once = (what: string): boolean => taken[what] ? false : (taken[what] = true)
    for (;;) {
      const s = await ready(since)
      const res = await send(Object.assign({}, req, { header: Object.assign({}, req.header, bearer(s)) }))
      if (ok(res)) return res
      const err = errorOf(res)
      const code = err.code as ServerErrorCode
      if (code === 'AUTH_TOKEN_EXPIRED' && once('refresh')) {
        await refreshFrom(s)
      } else if (o.reloginOn.indexOf(code) >= 0 && once('relogin')) {
        end(s, err)
      } else if (code === 'AUTH_STEP_UP_REQUIRED' && once('stepUp')) {
        await stepUp()
      } else {
        // A ban from one service (detail.service) leaves the session working elsewhere.
        if (code === 'AUTH_ACCOUNT_BANNED' && !(err.detail && err.detail.service)) end(s, err)
        throw err
      }
      // The app logged out while this request was out (or is logging out): it does not log in again.
      stillIn(since)
    }
  }

  const api = async <T>(method: 'GET' | 'POST', path: string, data?: unknown): Promise<T> =>
    (await authed({ url: o.prefix + path, method, data })).data as T

  /** A fresh wx.login() code to POST /auth/step-up: routes behind authorize({ stepUp }) then let the session through. */
  const stepUp: () => Promise<StepUpAnswer> = singleFlight(() => withCode((code) => api<StepUpAnswer>('POST', '/step-up', { code })))

  const close = createLogout(core, refreshFrom)

  const decrypt = createDecrypt(core, api, close)

  /** A request to the gateway or a host route: with the Bearer token unless `auth: false`. */
  async function request<T = unknown> (req: RequestOptions): Promise<Response<T>> {
    const r: Send = { url: req.url, method: req.method || 'GET', data: req.data, header: req.header, timeout: req.timeout }
    if (req.auth !== false && !trusted(r.url)) throw new WechatAuthError('CLIENT_FOREIGN_URL', 'foreign URL')
    const res = req.auth === false ? await send(r) : await authed(r)
    if (!ok(res)) throw errorOf(res)
    return answer<T>(res)
  }

  // Object.assign rather than a spread, which ES2017 has no syntax for (esbuild would add helpers).
  return Object.assign(webLogin(api), {
    ensureLogin: () => ensureLogin(),
    request,
    stepUp,
    me: () => api<Me>('GET', '/me'),
    phone: (code: string) => api<Phone>('POST', '/wechat/phone', { code }),
    decrypt,
    logout: (opts?: { allDevices?: boolean }) => close(opts),
    /** The stored tokens, or null before a login. */
    session: (): Session | null => store.get(),
    on: core.events.on
  })
}

export type WechatAuthClient = ReturnType<typeof createWechatAuthClient>
