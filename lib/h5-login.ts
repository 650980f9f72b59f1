// H5 login: an official account's web authorization, for pages opened inside WeChat. The gateway
// sends the browser to WeChat's authorize page with a `state` of its own, WeChat sends it back to
// the page (returnTo, which must be one of H5_RETURN_URLS) with a code, and the page posts code
// and state here for a token pair of a new `h5` session, under the session rules, for the user
// the host's resolveUser names (it is told the unionid, the same as in the mini program).
//
// The state proves itself and names its browser, so nothing is stored until it is used:
//   state = <nonce>.<expiry>.<scope>.<appid>.<mac>
// The mac (HMAC under a key derived from JWT_SECRET) shows this gateway made it, with that expiry,
// scope and mini program. The nonce is the HMAC of a random browser secret that only the browser
// holds, in an HttpOnly cookie: a state from another browser (login CSRF: an attacker's code and
// state sent to a victim's page) does not match that browser's cookie. A used state is claimed in
// the store (a digest of its nonce, until it expires anyway): single use on every instance.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { outcomeOf } from './audit.js'
import { createCodeClaims, spendCode } from './code-exchange.js'
import {
  AuthH5CodeMissingError, AuthH5ReturnToRefusedError, AuthH5StateExpiredError, AuthH5StateInvalidError, AuthH5StateMissingError,
  AuthH5StateOtherBrowserError, AuthH5StateUsedError, WxOauthCodeUsedError
} from './errors.js'
import { b64url, digest, randomId } from './ids.js'
import type { createIdentityLogin } from './login.js'
import type { SessionOpener } from './session-opener.js'
import type { LoginDevice, OpenedPair, SessionsDeps, WeChatIdentity } from './sessions-deps.js'
import type { OAuthScope, WeChatOAuth } from './wechat-oauth.js'

/** The device type of a session made by H5 login. */
export const H5_DEVICE_TYPE = 'h5'
const BROWSER_SECRET_BYTES = 32
const MAC_BYTES = 16
const STATE = /^([A-Za-z0-9_-]{22})\.([0-9a-z]{1,10})\.([bu])\.(wx[0-9a-f]{16})\.([A-Za-z0-9_-]{22})$/
const SCOPE_LETTER: Record<OAuthScope, 'b' | 'u'> = { snsapi_base: 'b', snsapi_userinfo: 'u' }
// A used state is remembered a little past its expiry: gateway clocks may differ by this much.
const CLOCK_SKEW_MS = 60_000

/**
 * Whether a query names WeChat's own parameters, however a page's parser may read the name (decoded,
 * any case, `;` as a separator, `code[]`). WeChat appends `code` and `state` to redirect_uri: with
 * one already there, a page that reads the first `code` takes that one (an attacker's own: login
 * CSRF), not the one WeChat issued with this browser's state.
 */
function namesWeChatParameter (search: string): boolean {
  for (const pair of search.slice(1).split(/[&;]/)) {
    let name: string
    try {
      name = decodeURIComponent((pair.split('=', 1)[0] as string).replaceAll('+', ' '))
    } catch {
      return true // undecodable: no telling what a page makes of it
    }
    if (/^\s*(code|state)\s*(\[|$)/i.test(name)) return true
  }
  return false
}

/**
 * `text` percent-decoded as often as a page might (until it stops changing, at most three times),
 * `prepare` applied before each decoding. `whole` is false when one failed (a malformed escape):
 * `text` is then the last that worked.
 */
function decodedOften (text: string, prepare: (text: string) => string): { text: string, whole: boolean } {
  let current = text
  for (let i = 0; i < 3; i++) {
    let next: string
    try {
      next = decodeURIComponent(prepare(current))
    } catch {
      return { text: current, whole: false }
    }
    if (next === current) break
    current = next
  }
  return { text: current, whole: true }
}

/**
 * Whether `code=` or `state=` (or `[`) appears anywhere in the path or the query, decoded as often as
 * a page might: inside a value too (`?next=/app/?code=x`, `?x=%26code%3Dx`, `/app/%3Fcode=x`), which a
 * page that finds its code with a regular expression over location.href would take. `barcode=` too:
 * such a page's expression would match it as well.
 */
function mentionsWeChatParameter (url: URL): boolean {
  const { text, whole } = decodedOften(url.pathname + url.search, (t) => t.replaceAll('+', ' '))
  return !whole || /(code|state)\s*[=[]/i.test(text)
}

/**
 * `returnTo` as WeChat will be given it, when it has the origin of an entry of `allowed` and a path
 * under it (an entry ending with '/' allows the pages below it, any other only itself); null
 * otherwise. Parsed as a browser would (dot segments resolved), so no spelling leaves the list; an
 * encoded slash, backslash or dot, or a `;`, in the path is refused, and so is a query that names
 * `code` or `state`, or an address that holds `code=` or `state=` anywhere (WeChat adds its own).
 */
export function allowedReturnTo (returnTo: string, allowed: readonly URL[]): string | null {
  let url: URL
  try {
    url = new URL(returnTo)
  } catch {
    return null
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '' || url.hash !== '') return null
  // An encoded slash, backslash or dot in the path: a page server that decodes before routing would
  // leave the entry; a `;` (or %3B): one that drops path parameters first would read /app/..;/x as /x.
  // Decoded as often as a page server might, those four kept encoded: `%252e` is a `%2e` there.
  if (/%(2f|5c|2e|3b)|;/i.test(decodedOften(url.pathname, (t) => t.replace(/%(2f|5c|2e|3b)/gi, '%25$1')).text)) return null
  if (namesWeChatParameter(url.search) || mentionsWeChatParameter(url)) return null
  const fits = allowed.some((a) => a.origin === url.origin && (a.pathname.endsWith('/') ? url.pathname.startsWith(a.pathname) : url.pathname === a.pathname))
  url.hash = ''
  return fits ? url.href : null
}

export interface H5Deps {
  store: SessionsDeps['store']
  config: Pick<SessionsDeps['config'], 'jwtSecret'> & { H5_STATE_TTL?: number }
  wechat: Pick<SessionsDeps['wechat'], 'appOf'>
  oauth: Pick<WeChatOAuth, 'appid' | 'authorizeUrl' | 'exchangeCode' | 'userInfo'>
  /** H5_RETURN_URLS: the pages WeChat may send the browser back to. */
  returnUrls: readonly URL[]
  audit?: SessionsDeps['audit']
}

/** What the page posts back: WeChat's code and the state, as WeChat added them to its address. */
export interface H5Callback { code?: string, state?: string }

/**
 * `check()`'s answer; if it refuses a state that is ours (expired, of another browser, used), the
 * code that came with it is spent first: no browser can redeem it after with a state of its own (an
 * injected code), this one included (it starts again, as after any refusal). A forged state costs
 * no write.
 */
async function spentIfRefused<T> (spend: Pick<SessionsDeps, 'store'> & { appid: string }, code: string | undefined, check: () => T): Promise<T> {
  try {
    return check()
  } catch (err) {
    const ours = err instanceof AuthH5StateExpiredError || err instanceof AuthH5StateOtherBrowserError || err instanceof AuthH5StateUsedError
    if (ours && code !== undefined && code !== '') await spendCode(spend, spend.appid, code).catch(() => {})
    throw err
  }
}

export function createH5Login (deps: H5Deps, openFor: ReturnType<typeof createIdentityLogin>, opener: SessionOpener) {
  const { oauth, audit } = deps
  const ttlSec = deps.config.H5_STATE_TTL ?? 300
  const stateKey = createHmac('sha256', deps.config.jwtSecret).update('fastify-wechat-auth/h5-state').digest()
  const browserKey = createHmac('sha256', deps.config.jwtSecret).update('fastify-wechat-auth/h5-browser').digest()
  const mac = (key: Buffer, text: string): string => b64url(createHmac('sha256', key).update(text).digest().subarray(0, MAC_BYTES))
  const sameText = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))
  const once = createCodeClaims(deps, WxOauthCodeUsedError)
  const spend = { store: deps.store, appid: oauth.appid }

  /**
   * Starts an H5 login: WeChat's authorize URL to send the browser to (redirect_uri = `returnTo`,
   * the first of H5_RETURN_URLS by default), and the secret this browser must keep (HttpOnly cookie)
   * for `maxAge` seconds.
   */
  function authorize (opts: { returnTo?: string, scope?: OAuthScope, appid?: string }): { url: string, browserSecret: string, maxAge: number } {
    const appid = deps.wechat.appOf(opts.appid)
    opener.checkDeviceType(H5_DEVICE_TYPE)
    const returnTo = opts.returnTo === undefined ? deps.returnUrls[0]?.href : allowedReturnTo(opts.returnTo, deps.returnUrls)
    if (returnTo === undefined || returnTo === null) throw new AuthH5ReturnToRefusedError()
    const browserSecret = randomId(BROWSER_SECRET_BYTES)
    const expires = (Math.floor(Date.now() / 1000) + ttlSec).toString(36)
    const body = `${mac(browserKey, browserSecret)}.${expires}.${SCOPE_LETTER[opts.scope ?? 'snsapi_base']}.${appid}`
    return { url: oauth.authorizeUrl(returnTo, opts.scope ?? 'snsapi_base', `${body}.${mac(stateKey, body)}`), browserSecret, maxAge: ttlSec }
  }

  /** The state's parts once it is shown to be ours, unexpired and this browser's. */
  function checkedState (state: string | undefined, browserSecret: string | undefined): { nonce: string, expiresAt: number, scope: 'b' | 'u', appid: string } {
    if (state === undefined || state === '') throw new AuthH5StateMissingError()
    const m = STATE.exec(state)
    if (m === null || !sameText(m[5] as string, mac(stateKey, state.slice(0, state.lastIndexOf('.'))))) throw new AuthH5StateInvalidError()
    const [, nonce, expires, scope, appid] = m as unknown as [string, string, string, 'b' | 'u', string]
    const expiresAt = parseInt(expires, 36) * 1000
    if (expiresAt <= Date.now()) throw new AuthH5StateExpiredError()
    if (browserSecret === undefined || !sameText(mac(browserKey, browserSecret), nonce)) throw new AuthH5StateOtherBrowserError()
    return { nonce, expiresAt, scope, appid }
  }

  /**
   * The page's callback: the code exchanged with WeChat (once), the user's nickname and avatar with
   * snsapi_userinfo, and a token pair of a new `h5` session for the user resolveUser names. Every
   * refusal of the state has its code: AUTH_H5_STATE_MISSING, _INVALID, _EXPIRED, _OTHER_BROWSER, _USED.
   */
  async function login (callback: H5Callback, browserSecret: string | undefined, device: Omit<LoginDevice, 'deviceType'>): Promise<OpenedPair> {
    const opening = { started: false }
    let appid: string | undefined
    const code = callback.code
    try {
      const state = await spentIfRefused(spend, code, () => checkedState(callback.state, browserSecret))
      appid = state.appid
      if (code === undefined || code === '') throw new AuthH5CodeMissingError()
      // Single use, on every instance: the first use is remembered until the state would expire anyway.
      const claim = await deps.store.claimCode(digest(`h5-state\u0000${state.nonce}`), state.expiresAt - Date.now() + CLOCK_SKEW_MS)
      if (claim !== 'claimed') await spentIfRefused(spend, code, () => { throw new AuthH5StateUsedError() })
      const grant = await once(oauth.appid, code, async () => await oauth.exchangeCode(code))
      const identity: WeChatIdentity = { openid: grant.openid, appid: deps.wechat.appOf(state.appid), source: 'h5', officialAccount: oauth.appid }
      if (state.scope === 'u' && grant.scopes.includes('snsapi_userinfo')) {
        const { info, unionid } = await oauth.userInfo(grant)
        identity.userInfo = info
        if (grant.unionid === undefined && unionid !== undefined) identity.unionid = unionid
      }
      if (grant.unionid !== undefined) identity.unionid = grant.unionid
      return await openFor(identity, '', { ...device, deviceType: H5_DEVICE_TYPE }, 'h5', opening)
    } catch (err) {
      if (!opening.started) audit?.({ event: 'login', outcome: outcomeOf(err), ...(appid !== undefined ? { appid } : {}), reason: 'h5' }, device.request)
      throw err
    }
  }

  return { authorize, login, officialAccount: oauth.appid }
}

export type H5Login = ReturnType<typeof createH5Login>
