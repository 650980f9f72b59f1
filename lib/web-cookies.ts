// The gateway's cookies for web clients: the refresh cookie of cookie mode (REFRESH_COOKIE: a web
// device type's refresh token travels only in an HttpOnly cookie, never in a JSON body a script
// could read) and H5 login's browser secret (the state's binding to this browser).
//
// Both are HttpOnly, SameSite=Strict and scoped to the one path that reads them. Secure, and named
// with the `__Secure-` prefix (so that no plain-http response can set one), except in development
// over http://localhost, 127.0.0.1 or [::1], where a browser would keep no Secure cookie of an
// http:// origin (some would): there they are plain `wxauth-…`.
//
// CSRF: a refresh from the cookie needs the `X-WeChat-Auth-CSRF: 1` header, which a page of another
// origin can only send after a CORS preflight the gateway never grants, and is refused when the
// browser says the request is cross-site (Sec-Fetch-Site); SameSite=Strict keeps the cookie off
// cross-site requests in the first place.
//
// Cookie tossing: a sibling subdomain (same site) can set a cookie of the same name for the parent
// domain (`__Secure-` does not stop it; `__Host-` would, but needs Path=/), which the browser sends
// alongside ours, the older first. A request naming one of these cookies twice is refused as not the
// page's own (AUTH_CSRF_REJECTED, detail.cause 'cookie-twice'): taking the first would serve the
// attacker's (a refresh into his session, an H5 state of his), taking the last is no safer.
import { AuthCsrfRejectedError, AuthRefreshMissingError } from './errors.js'
import type { TokenPair } from './schemas.js'

/** The header a refresh from the cookie must carry, with the value `1`. */
export const CSRF_HEADER = 'x-wechat-auth-csrf'
const REFRESH_COOKIE = 'wxauth-refresh'
const H5_COOKIE = 'wxauth-h5'
const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/

/** What the cookies are decided from: a Fastify request has this shape. */
export interface CookieRequest {
  protocol: string
  hostname: string
  headers: Record<string, string | string[] | undefined>
}
export interface CookieOptions { httpOnly: true, secure: boolean, sameSite: 'strict', path: string, maxAge?: number, expires?: Date }
/** Where cookies are set: a Fastify reply (Fastify appends each Set-Cookie header to the others). */
export interface CookieReply {
  header: (name: 'set-cookie', value: string) => unknown
}
/**
 * A Cookie header's cookies by name, and a Set-Cookie header's value (the `cookie` package's parse and
 * serialize). Not @fastify/cookie's reply.setCookie: that one merges a host's registration's
 * parseOptions in (a `signed: true` signed the refresh token, which then never read back; a `domain`
 * widened the cookie to every subdomain), depending on which of the two registered it first.
 */
export interface CookieCodec {
  parse: (header: string) => Record<string, string | undefined>
  serialize: (name: string, value: string, options: CookieOptions) => string
}

/** A token pair as answered: in cookie mode, a web client's has no refresh token. */
export type TokenAnswer = Omit<TokenPair, 'refreshToken'> & { refreshToken?: string }

export interface WebCookiesConfig {
  production: boolean
  /** REFRESH_COOKIE's device types; none: cookie mode is off. */
  refreshCookieTypes: readonly string[]
}

/**
 * Whether a Cookie header has two pairs named `name` (names trimmed, as the parser reads them). Two
 * indexOf on the refresh's path; the header is split only when the name occurs twice as text.
 */
function namedTwice (header: string, name: string): boolean {
  const first = header.indexOf(name)
  if (first === -1 || header.indexOf(name, first + name.length) === -1) return false
  let seen = 0
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim() === name && ++seen === 2) return true
  }
  return false
}

/** Set-Cookie headers that set a cookie, or clear it (empty, expired). */
function cookieWriter (serialize: CookieCodec['serialize']) {
  const setCookie = (reply: CookieReply, name: string, value: string, options: CookieOptions): void => { reply.header('set-cookie', serialize(name, value, options)) }
  const clearCookie = (reply: CookieReply, name: string, options: CookieOptions): void => { setCookie(reply, name, '', { ...options, maxAge: 0, expires: new Date(0) }) }
  return { setCookie, clearCookie }
}

/**
 * The cookies of the auth routes mounted at `prefix`: the host's prefix included (`/api/auth` under
 * `/api`), so that a browser sends each cookie to the route that reads it.
 */
export function createWebCookies (config: WebCookiesConfig, { parse, serialize }: CookieCodec, prefix: string) {
  const types = new Set(config.refreshCookieTypes)
  const [refreshPath, h5Path] = [`${prefix}/refresh`, `${prefix}/h5`]
  const { setCookie, clearCookie } = cookieWriter(serialize)

  /** Secure unless in development over plain http to a loopback host. */
  const secureFor = (request: CookieRequest): boolean =>
    config.production || request.protocol !== 'http' || !LOOPBACK_HOST.test(request.hostname)
  const nameFor = (request: CookieRequest, base: string): string => secureFor(request) ? `__Secure-${base}` : base
  const optionsFor = (request: CookieRequest, path: string, maxAge?: number): CookieOptions =>
    ({ httpOnly: true, secure: secureFor(request), sameSite: 'strict', path, ...(maxAge !== undefined ? { maxAge } : {}) })
  const read = (request: CookieRequest, base: string): string | undefined => {
    const header = request.headers.cookie
    if (typeof header !== 'string' || header === '') return undefined
    const name = nameFor(request, base)
    if (namedTwice(header, name)) throw Object.assign(new AuthCsrfRejectedError(), { detail: { cause: 'cookie-twice', cookie: base } })
    const value = parse(header)[name]
    return value === undefined || value === '' ? undefined : value
  }

  /** Puts a pair's refresh token in the cookie; the answer keeps everything else. */
  function inCookie (request: CookieRequest, reply: CookieReply, pair: TokenPair): TokenAnswer {
    const { refreshToken, ...answer } = pair
    setCookie(reply, nameFor(request, REFRESH_COOKIE), refreshToken, optionsFor(request, refreshPath, pair.refreshExpiresIn))
    return answer
  }

  /** A web device type's refresh token in the cookie (cookie mode), in the body otherwise. */
  function bySession (request: CookieRequest, reply: CookieReply, pair: TokenPair & { deviceType?: string }): TokenAnswer {
    const { deviceType, ...answer } = pair
    return deviceType !== undefined && types.has(deviceType) ? inCookie(request, reply, answer) : answer
  }

  return {
    /** Whether cookie mode is on: refresh then also reads the cookie. */
    cookieMode: types.size > 0,

    /** The answer of a new session: a web device type's refresh token in the cookie (cookie mode), in the body otherwise. */
    opened: bySession,

    /**
     * The answer of a refresh whose token came in the body, as for a new session: decided by the
     * session's device type, not by how the request came (pair.deviceType, lib/refresh.ts).
     */
    refreshedFromBody: bySession,

    /** The answer of a refresh from the cookie: the successor goes back in the cookie. */
    refreshed: inCookie,

    /**
     * The refresh token of the cookie, for a request that shows it is the page's own:
     * AUTH_REFRESH_MISSING without one, AUTH_CSRF_REJECTED without the header or when cross-site,
     * or when it is named twice (cookie tossing: detail.cause 'cookie-twice').
     */
    refreshToken (request: CookieRequest): string {
      const token = read(request, REFRESH_COOKIE)
      if (token === undefined) throw new AuthRefreshMissingError()
      const site = request.headers['sec-fetch-site']
      if (request.headers[CSRF_HEADER] !== '1' || site === 'cross-site') throw new AuthCsrfRejectedError()
      return token
    },

    /** Forgets the refresh cookie (logout, a refresh token that is dead). */
    clearRefresh (request: CookieRequest, reply: CookieReply): void {
      clearCookie(reply, nameFor(request, REFRESH_COOKIE), optionsFor(request, refreshPath))
    },

    /** H5 login: this browser's secret, for `maxAge` seconds, sent back only to the H5 routes. */
    setBrowserSecret (request: CookieRequest, reply: CookieReply, secret: string, maxAge: number): void {
      setCookie(reply, nameFor(request, H5_COOKIE), secret, optionsFor(request, h5Path, maxAge))
    },

    /** H5 login: this browser's secret, if it sent one; AUTH_CSRF_REJECTED when it is named twice (cookie tossing). */
    browserSecret: (request: CookieRequest): string | undefined => read(request, H5_COOKIE),

    clearBrowserSecret (request: CookieRequest, reply: CookieReply): void {
      clearCookie(reply, nameFor(request, H5_COOKIE), optionsFor(request, h5Path))
    }
  }
}

export type WebCookies = ReturnType<typeof createWebCookies>
