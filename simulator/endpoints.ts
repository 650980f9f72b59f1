// The endpoints the simulator serves, as handlers from a query and a body to an Answer (the WeChat
// ones answer errors with HTTP 200 and an errcode, as WeChat does):
//   GET  /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code
//   POST /cgi-bin/stable_token  {"grant_type":"client_credential","appid","secret","force_refresh"}
//        A body that is not a JSON object -> 47001; grant_type -> 40002; appid -> 40013; secret -> 40125.
//   GET  /wxa/checksession?access_token&openid&signature&sig_method=hmac_sha256
//   GET  /wxa/resetusersessionkey (same parameters): a new session_key for the user
//        A wrong, missing or stale signature, or an unknown openid -> 87009; another sig_method -> 40097.
//   POST /wxa/business/getuserphonenumber?access_token  {"code"}
//        A missing, empty or used code -> 40029 (WeChat documents no other code for it); a body that
//        is not a JSON object -> 47001.
//   POST /wxa/getwxacodeunlimit?access_token: a mini-program code's PNG bytes, or JSON errors (./wxacode.ts).
//   GET  /connect/oauth2/authorize, /sns/oauth2/access_token, /sns/userinfo: an official account's web
//        authorization, for H5 login (./oauth.ts).
//   POST /dev/encrypt?user[&appid]  (development aid, not WeChat): what wx.getUserInfo would hand the
//        client for the JSON object body: encryptedData + iv (with a watermark, under the user's
//        session_key), and rawData + signature (sha1(rawData + session_key)).
//        No session_key for that user and appid -> HTTP 404 errcode 40400; not a JSON object -> 400 47001.
// Endpoints that take access_token: missing -> 41001; unknown, revoked or replaced by force_refresh
// more than 5 minutes ago -> 40001; expired -> 42001. A token acts for the appid that obtained it.
//
// A login code or a phone code is `<user>` or `<user>.<anything>`; each code works once. Special users
// produce WeChat's errors so every path can be tried by hand:
//   invalid -> 40029, limit -> 45011, busy -> -1 on the first try of a code (login and phone codes);
//   risky -> 40226, slow -> answers after `slowMs`, garbage -> a non-JSON body, nounion -> no unionid
//   (login codes only).
import { createHmac } from 'node:crypto'
import { fail, type Answer, type Handler, type Routes } from './server.js'
import { phoneOf, type SimulatorState } from './state.js'
import { wxacode } from './wxacode.js'

export interface EndpointOptions {
  /** How long the `slow` user waits before answering, in ms. */
  slowMs?: number
  /** A delay before every stable_token answer, so tests can make concurrent callers overlap. */
  stableTokenDelayMs?: number
}

const GARBAGE = '<html><body>502 Bad Gateway</body></html>'

function userOf (code: string): string {
  const dot = code.indexOf('.')
  return dot === -1 ? code : code.slice(0, dot)
}

/** WeChat's signature for checksession: the key is the session_key string's bytes, not its decoded bytes. */
const sessionSignature = (sessionKey: string): string =>
  createHmac('sha256', Buffer.from(sessionKey, 'utf8')).update('').digest('hex')

function parseObject (body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

function code2Session (s: SimulatorState, q: URLSearchParams): Answer {
  const code = q.get('js_code')
  const user = userOf(code ?? '')
  const appid = q.get('appid') ?? ''
  const more = { code, appid: s.secrets.has(appid) ? appid : undefined }
  if (user === 'garbage') return { errcode: 0, body: GARBAGE, ...more }
  if (q.get('grant_type') !== 'authorization_code') return fail(40002, 'invalid grant_type', more)
  if (!s.secrets.has(appid)) return fail(40013, 'invalid appid', more)
  if (q.get('secret') !== s.secrets.get(appid)) return fail(40125, 'invalid appsecret', more)
  if (code === null || code === '') return fail(41008, 'missing code', more)
  if (s.loginCodes.isUsed(code)) return fail(40163, 'code been used', more)
  if (user === 'invalid' || user === '') return fail(40029, 'invalid code', more)
  if (user === 'risky') return fail(40226, 'high risk user', more)
  if (user === 'limit') return fail(45011, 'api minute-quota reach limit', more)
  if (user === 'busy' && s.loginCodes.firstTry(code)) return fail(-1, 'system error', more)
  s.loginCodes.use(code)
  const openid = s.openidOf(user, appid)
  const body: Record<string, string> = { session_key: s.issueSessionKey(appid, openid), openid }
  if (!user.startsWith('nounion')) body.unionid = s.unionidOf(user)
  return { errcode: 0, body, ...more }
}

function stableToken (s: SimulatorState, body: Buffer): Answer {
  const req = parseObject(body)
  if (req === undefined) return fail(47001, 'data format error')
  const appid = typeof req.appid === 'string' && s.secrets.has(req.appid) ? req.appid : undefined
  if (req.grant_type !== 'client_credential') return fail(40002, 'invalid grant_type', { appid })
  if (appid === undefined) return fail(40013, 'invalid appid')
  if (req.secret !== s.secrets.get(appid)) return fail(40125, 'invalid appsecret', { appid })
  const { token, expiresIn } = s.tokens.stable(appid, req.force_refresh === true)
  return { errcode: 0, appid, body: { access_token: token, expires_in: expiresIn } }
}

/** Runs `handler` for the appid the query's access_token belongs to. */
const withAccessToken = (s: SimulatorState, handler: (appid: string, q: URLSearchParams, body: Buffer) => Answer): Handler =>
  (q, body) => {
    const token = q.get('access_token') ?? ''
    if (token === '') return fail(41001, 'access_token missing')
    const checked = s.tokens.check(token)
    if ('errcode' in checked) return fail(checked.errcode, checked.errmsg)
    return handler(checked.appid, q, body)
  }

function sessionCheck (s: SimulatorState, appid: string, q: URLSearchParams, reset: boolean): Answer {
  if (q.get('sig_method') !== 'hmac_sha256') return fail(40097, 'invalid args', { appid })
  const openid = q.get('openid') ?? ''
  const sessionKey = s.sessionKeyOfOpenid(appid, openid)
  if (sessionKey === undefined || q.get('signature') !== sessionSignature(sessionKey)) return fail(87009, 'invalid signature', { appid })
  if (!reset) return { errcode: 0, appid, body: { errcode: 0, errmsg: 'ok' } }
  return { errcode: 0, appid, body: { errcode: 0, errmsg: 'ok', openid, session_key: s.issueSessionKey(appid, openid) } }
}

function phoneNumber (s: SimulatorState, appid: string, body: Buffer): Answer {
  const req = parseObject(body)
  if (req === undefined) return fail(47001, 'data format error', { appid })
  const code = typeof req.code === 'string' ? req.code : null
  const user = userOf(code ?? '')
  const more = { appid, code }
  if (code === null || user === '' || user === 'invalid' || s.phoneCodes.isUsed(code)) return fail(40029, 'invalid code', more)
  if (user === 'limit') return fail(45011, 'api minute-quota reach limit', more)
  if (user === 'busy' && s.phoneCodes.firstTry(code)) return fail(-1, 'system error', more)
  s.phoneCodes.use(code)
  const phoneInfo = { ...phoneOf(user), watermark: { timestamp: s.unixNow(), appid } }
  return { errcode: 0, ...more, body: { errcode: 0, errmsg: 'ok', phone_info: phoneInfo } }
}

function devEncrypt (s: SimulatorState, q: URLSearchParams, body: Buffer): Answer {
  const user = q.get('user') ?? ''
  const appid = q.get('appid') ?? s.first.appid
  const more = { appid: s.secrets.has(appid) ? appid : undefined }
  const data = parseObject(body)
  if (data === undefined) return fail(47001, 'data format error: the body must be a JSON object', { ...more, status: 400 })
  if (s.sessionKeyOf(user, appid) === undefined) {
    return fail(40400, `user ${JSON.stringify(user)} has no session_key in ${appid}: log in first`, { ...more, status: 404 })
  }
  return { errcode: 0, ...more, body: s.encryptFor(user, data, appid) }
}

export function endpoints (s: SimulatorState, opts: EndpointOptions): Routes {
  const slowMs = opts.slowMs ?? 30_000
  const stableTokenDelayMs = opts.stableTokenDelayMs ?? 0
  return new Map<string, Handler>([
    ['GET /sns/jscode2session', (q) => {
      const answer = code2Session(s, q)
      return userOf(q.get('js_code') ?? '') === 'slow' ? { ...answer, delayMs: slowMs } : answer
    }],
    ['POST /cgi-bin/stable_token', (_q, body) => ({ ...stableToken(s, body), delayMs: stableTokenDelayMs })],
    ['GET /wxa/checksession', withAccessToken(s, (appid, q) => sessionCheck(s, appid, q, false))],
    ['GET /wxa/resetusersessionkey', withAccessToken(s, (appid, q) => sessionCheck(s, appid, q, true))],
    ['POST /wxa/business/getuserphonenumber', withAccessToken(s, (appid, _q, body) => phoneNumber(s, appid, body))],
    ['POST /wxa/getwxacodeunlimit', withAccessToken(s, (appid, _q, body) => wxacode(appid, body))],
    ['GET /connect/oauth2/authorize', (q) => s.oauth.authorize(q)],
    ['GET /sns/oauth2/access_token', (q) => {
      const answer = s.oauth.accessToken(q)
      return s.oauth.isSlow(q.get('code')) ? { ...answer, delayMs: slowMs } : answer
    }],
    ['GET /sns/userinfo', (q) => s.oauth.userInfo(q)],
    ['POST /dev/encrypt', (q, body) => devEncrypt(s, q, body)]
  ])
}
