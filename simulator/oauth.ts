// Web authorization of an official account (H5 pages opened inside WeChat), as WeChat serves it:
//   GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state  (development aid
//       standing in for WeChat's authorize page, served by open.weixin.qq.com): without `user`, a small
//       HTML page to pick who logs in; with `user=<name>`, 302 to redirect_uri with `code` and `state`
//       added to its query (`deny=1`: the user refused snsapi_userinfo, so `state` only, no code).
//       WeChat shows its refusals on that page; here they are HTTP 400 JSON: a missing or unknown appid
//       -> 10012, a missing redirect_uri or one that is not http(s) -> 10011, response_type other than
//       code -> 10010, a scope other than snsapi_base and snsapi_userinfo -> 10005.
//   GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code
//       {access_token, expires_in, refresh_token, openid, scope, unionid} for a code the authorize page
//       issued (once, within 5 minutes, for that official account). grant_type -> 40002; appid -> 40013;
//       secret -> 40125; no code -> 41008; used -> 40163; unknown, expired or another account's -> 40029.
//   GET /sns/userinfo?access_token&openid&lang
//       {openid, nickname, sex, province, city, country, headimgurl, privilege, unionid} with a user
//       access_token of scope snsapi_userinfo. No token -> 41001; unknown -> 40001; expired -> 42001;
//       another user's openid -> 40003; a snsapi_base token -> 48001.
// The openid is per official account (distinct from every mini program's); the unionid is the user's
// everywhere. Special users as for login codes: invalid -> 40029, limit -> 45011, busy -> -1 on the
// code's first exchange, garbage -> a non-JSON body, slow -> late, nounion -> no unionid.
import { randomBytes } from 'node:crypto'
import { fail, type Answer } from './server.js'
import type { SimulatorApp } from './state.js'

/** The simulated official account the built-in simulator serves by default (development only). */
export const DEV_OA_APPID = 'wx00000000000000a0'
export const DEV_OA_SECRET = 'simulator-official-account-secret'

const CODE_TTL_MS = 5 * 60 * 1000
const USER_TOKEN_TTL_S = 7200
const SCOPES = new Set(['snsapi_base', 'snsapi_userinfo'])
const GARBAGE = '<html><body>502 Bad Gateway</body></html>'

interface IssuedCode { appid: string, user: string, scope: string, issuedAt: number }
interface UserToken { appid: string, user: string, openid: string, scope: string, expiresAt: number }

/** What the official-account side needs from the rest of the simulator's state. */
export interface OAuthDeps {
  now: () => number
  openidOf: (user: string, appid: string) => string
  unionidOf: (user: string) => string
}

const userOf = (code: string): string => code.slice(0, Math.max(0, code.indexOf('.')))
const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** What the official-account side keeps: secrets, the codes its authorize page issued, the user tokens it gave. */
interface OAuthData {
  secrets: Map<string, string>
  codes: Map<string, IssuedCode>
  used: Set<string>
  tried: Set<string>
  tokens: Map<string, UserToken>
  deps: OAuthDeps
}

/** The authorize page: a code for `user`, or the page to pick one. */
function authorize (d: OAuthData, q: URLSearchParams): Answer {
  const appid = q.get('appid') ?? ''
  const scope = q.get('scope') ?? ''
  const more = { appid: d.secrets.has(appid) ? appid : undefined, status: 400 }
  if (!d.secrets.has(appid)) return fail(10012, 'appid missing or invalid', more)
  let target: URL
  try {
    target = new URL(q.get('redirect_uri') ?? '')
  } catch {
    return fail(10011, 'redirect_uri missing or invalid', more)
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') return fail(10011, 'redirect_uri missing or invalid', more)
  if (q.get('response_type') !== 'code') return fail(10010, 'response_type must be code', more)
  if (!SCOPES.has(scope)) return fail(10005, 'no permission for this scope', more)
  const user = q.get('user') ?? ''
  if (user === '') return { errcode: 0, appid, contentType: 'text/html; charset=utf-8', body: pickPage(q) }
  // Appended to redirect_uri's own query, which is kept as it is, as WeChat does (a code already
  // there stays first: the gateway refuses such a returnTo).
  const added = new URLSearchParams()
  if (q.get('deny') !== '1') {
    const code = `${user}.${randomBytes(12).toString('base64url')}`
    d.codes.set(code, { appid, user, scope, issuedAt: d.deps.now() })
    added.append('code', code)
  }
  added.append('state', q.get('state') ?? '')
  target.search = target.search === '' ? added.toString() : `${target.search.slice(1)}&${added.toString()}`
  return { errcode: 0, appid, status: 302, headers: { location: target.href }, body: '' }
}

function accessToken (d: OAuthData, q: URLSearchParams): Answer {
  const code = q.get('code')
  const appid = q.get('appid') ?? ''
  const more = { code, appid: d.secrets.has(appid) ? appid : undefined }
  const issued = code === null ? undefined : d.codes.get(code)
  const user = issued?.user ?? userOf(code ?? '')
  if (user === 'garbage') return { errcode: 0, body: GARBAGE, ...more }
  if (q.get('grant_type') !== 'authorization_code') return fail(40002, 'invalid grant_type', more)
  if (!d.secrets.has(appid)) return fail(40013, 'invalid appid', more)
  if (q.get('secret') !== d.secrets.get(appid)) return fail(40125, 'invalid appsecret', more)
  if (code === null || code === '') return fail(41008, 'missing code', more)
  if (d.used.has(code)) return fail(40163, 'code been used', more)
  if (issued === undefined || issued.appid !== appid || d.deps.now() - issued.issuedAt > CODE_TTL_MS || user === 'invalid') {
    return fail(40029, 'invalid code', more)
  }
  if (user === 'limit') return fail(45011, 'api minute-quota reach limit', more)
  if (user === 'busy' && !d.tried.has(code)) {
    d.tried.add(code)
    return fail(-1, 'system error', more)
  }
  d.used.add(code)
  const openid = d.deps.openidOf(user, appid)
  const token = randomBytes(66).toString('base64url')
  d.tokens.set(token, { appid, user, openid, scope: issued.scope, expiresAt: d.deps.now() + USER_TOKEN_TTL_S * 1000 })
  const body: Record<string, unknown> = {
    access_token: token, expires_in: USER_TOKEN_TTL_S, refresh_token: randomBytes(66).toString('base64url'), openid, scope: issued.scope
  }
  if (!user.startsWith('nounion')) body.unionid = d.deps.unionidOf(user)
  return { errcode: 0, body, ...more }
}

function userInfo (d: OAuthData, q: URLSearchParams): Answer {
  const token = q.get('access_token') ?? ''
  if (token === '') return fail(41001, 'access_token missing')
  const held = d.tokens.get(token)
  if (held === undefined) return fail(40001, 'invalid credential, access_token is invalid or not latest')
  const more = { appid: held.appid }
  if (d.deps.now() >= held.expiresAt) return fail(42001, 'access_token expired', more)
  if (q.get('openid') !== held.openid) return fail(40003, 'invalid openid', more)
  if (held.scope !== 'snsapi_userinfo') return fail(48001, 'api unauthorized', more)
  const body: Record<string, unknown> = {
    openid: held.openid,
    nickname: held.user.charAt(0).toUpperCase() + held.user.slice(1),
    sex: 0,
    province: '',
    city: '',
    country: 'CN',
    headimgurl: `https://thirdwx.qlogo.cn/mmopen/simulator/${encodeURIComponent(held.user)}/132`,
    privilege: []
  }
  if (!held.user.startsWith('nounion')) body.unionid = d.deps.unionidOf(held.user)
  return { errcode: 0, body, ...more }
}

/** The official accounts served, the codes their authorize page issued and the user access_tokens they gave. */
export function createOAuthState (accounts: SimulatorApp[], deps: OAuthDeps) {
  const d: OAuthData = { secrets: new Map(accounts.map((a) => [a.appid, a.secret])), codes: new Map(), used: new Set(), tried: new Set(), tokens: new Map(), deps }
  return {
    accounts,
    authorize: (q: URLSearchParams): Answer => authorize(d, q),
    accessToken: (q: URLSearchParams): Answer => accessToken(d, q),
    userInfo: (q: URLSearchParams): Answer => userInfo(d, q),
    /** Whether a code the authorize page issued was slow's (the exchange answers late). */
    isSlow: (code: string | null): boolean => (code === null ? undefined : d.codes.get(code))?.user === 'slow'
  }
}

/** The stand-in for WeChat's consent page: who logs in, allow or deny. */
function pickPage (q: URLSearchParams): string {
  const hidden = [...q.entries()].filter(([k]) => k !== 'user' && k !== 'deny')
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`).join('')
  return '<!doctype html><meta charset="utf-8"><title>WeChat simulator: authorize</title>' +
    `<form method="get">${hidden}<label>Log in as <input name="user" value="alice"></label> ` +
    '<button>Allow</button> <button name="deny" value="1">Deny</button></form>'
}

export type OAuthState = ReturnType<typeof createOAuthState>
