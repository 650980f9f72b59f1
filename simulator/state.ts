// What the simulator knows: the mini programs it serves, each user's openid, unionid and last
// session_key, the access_tokens it issued and the one-time codes already spent, and the official
// accounts whose web authorization it serves (./oauth.ts). No HTTP here.
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { createOAuthState, DEV_OA_APPID, DEV_OA_SECRET } from './oauth.js'

export interface SimulatorApp {
  appid: string
  secret: string
}

export interface PhoneNumber {
  phoneNumber: string
  purePhoneNumber: string
  countryCode: string
}

/** What wx.getUserInfo hands a client: the data in clear and signed, and encrypted. */
export interface EncryptedData {
  encryptedData: string
  iv: string
  /** The data without watermark, as JSON text. */
  rawData: string
  /** sha1(rawData + session_key), hex. */
  signature: string
}

export interface StateOptions {
  appid?: string
  secret?: string
  /** Several mini programs; when given, `appid` and `secret` are ignored and the first app is the default. */
  apps?: SimulatorApp[]
  /**
   * The official accounts whose web authorization (H5 login) it serves; the first is the default.
   * One by default: DEV_OA_APPID with DEV_OA_SECRET.
   */
  officialAccounts?: SimulatorApp[]
  /** Lifetime of an access_token, in seconds (WeChat: 7200). */
  tokenTtlSec?: number
  /** The clock for token expiry and watermarks, in ms (a fake one keeps tests free of sleeps). */
  now?: () => number
}

export const DEV_APPID = 'wx00000000000000d0'

// WeChat keeps a replaced access_token valid this long, and renews a stable one this close to its end.
const TOKEN_OVERLAP_MS = 300_000

const id = (...parts: string[]): string =>
  createHash('sha256').update(parts.join('\u0000')).digest('base64url').slice(0, 27)

/** A Chinese mobile number derived from the user, so tests can predict it. */
export function phoneOf (user: string): PhoneNumber {
  const n = createHash('sha256').update(`phone\u0000${user}`).digest().readBigUInt64BE(0) % 1_000_000_000n
  const number = `13${n.toString().padStart(9, '0')}`
  return { phoneNumber: number, purePhoneNumber: number, countryCode: '86' }
}

interface IssuedToken {
  appid: string
  expiresAt: number
  /** Set by force_refresh: the end of the overlap with the token that replaced this one. */
  replacedUntil: number | null
  revoked: boolean
}

type TokenCheck = { appid: string } | { errcode: number, errmsg: string }

/** access_tokens as stable_token hands them out: one current token per appid. */
function accessTokens (ttlSec: number, now: () => number) {
  const tokens = new Map<string, IssuedToken>()
  const current = new Map<string, string>()

  function issue (appid: string): { token: string, expiresIn: number } {
    const token = randomBytes(96).toString('base64url')
    tokens.set(token, { appid, expiresAt: now() + ttlSec * 1000, replacedUntil: null, revoked: false })
    current.set(appid, token)
    return { token, expiresIn: ttlSec }
  }

  function stable (appid: string, forceRefresh: boolean): { token: string, expiresIn: number } {
    const token = current.get(appid) ?? ''
    const held = tokens.get(token)
    if (held === undefined) return issue(appid)
    const left = held.expiresAt - now()
    if (forceRefresh) {
      if (left > TOKEN_OVERLAP_MS) held.replacedUntil = now() + TOKEN_OVERLAP_MS
      return issue(appid)
    }
    // The previous token is not touched: it stays valid until its own expiry.
    return left > TOKEN_OVERLAP_MS ? { token, expiresIn: Math.floor(left / 1000) } : issue(appid)
  }

  function check (token: string): TokenCheck {
    const held = tokens.get(token)
    if (held === undefined || held.revoked || (held.replacedUntil !== null && now() >= held.replacedUntil)) {
      return { errcode: 40001, errmsg: 'invalid credential, access_token is invalid or not latest' }
    }
    if (now() >= held.expiresAt) return { errcode: 42001, errmsg: 'access_token expired' }
    return { appid: held.appid }
  }

  function invalidate (appid: string): void {
    for (const held of tokens.values()) if (held.appid === appid) held.revoked = true
    current.delete(appid)
  }

  return { stable, check, invalidate, currentOf: (appid: string) => current.get(appid) }
}

/** Codes that work once; WeChat's -1 for the `busy` user comes on a code's first try only. */
function oneTimeCodes () {
  const used = new Set<string>()
  const tried = new Set<string>()
  return {
    isUsed: (code: string): boolean => used.has(code),
    use: (code: string): void => { used.add(code) },
    /** True the first time it is asked about a code, false after. */
    firstTry (code: string): boolean {
      if (tried.has(code)) return false
      tried.add(code)
      return true
    }
  }
}

function checked (name: string, apps: SimulatorApp[], seen = new Set<string>()): SimulatorApp[] {
  if (apps.length === 0) throw new Error(`${name}: give at least one { appid, secret }`)
  for (const { appid, secret } of apps) {
    if (appid === '' || secret === '') throw new Error(`${name}: every app needs a non-empty appid and secret`)
    if (seen.has(appid)) throw new Error(`${name}: appid ${appid} is listed twice`)
    seen.add(appid)
  }
  return apps.map(({ appid, secret }) => ({ appid, secret }))
}

function appsFrom (opts: StateOptions): { apps: SimulatorApp[], officialAccounts: SimulatorApp[] } {
  const seen = new Set<string>()
  const apps = checked('apps', opts.apps ?? [{ appid: opts.appid ?? DEV_APPID, secret: opts.secret ?? randomBytes(16).toString('hex') }], seen)
  // An appid is a mini program's or an official account's, never both.
  const officialAccounts = checked('officialAccounts', opts.officialAccounts ?? [{ appid: DEV_OA_APPID, secret: DEV_OA_SECRET }], seen)
  return { apps, officialAccounts }
}

export function createState (opts: StateOptions) {
  const { apps, officialAccounts } = appsFrom(opts)
  const first = apps[0] as SimulatorApp
  const now = opts.now ?? Date.now
  const secrets = new Map(apps.map((a) => [a.appid, a.secret]))
  // appid -> openid -> the session_key last issued; openids are per appid, so they identify the user.
  const sessionKeys = new Map(apps.map((a) => [a.appid, new Map<string, string>()]))

  // Per app, mini program or official account: the same person has another openid in each.
  const openidOf = (user: string, appid = first.appid): string => `o${id(appid, 'openid', user)}`
  const sessionKeyOfOpenid = (appid: string, openid: string): string | undefined => sessionKeys.get(appid)?.get(openid)
  const sessionKeyOf = (user: string, appid = first.appid): string | undefined => sessionKeyOfOpenid(appid, openidOf(user, appid))
  const unixNow = (): number => Math.floor(now() / 1000)
  const unionidOf = (user: string): string => `u${id('unionid', user)}`

  function issueSessionKey (appid: string, openid: string): string {
    const sessionKey = randomBytes(16).toString('base64')
    sessionKeys.get(appid)?.set(openid, sessionKey)
    return sessionKey
  }

  function encryptFor (user: string, data: Record<string, unknown>, appid = first.appid): EncryptedData {
    const sessionKey = sessionKeyOf(user, appid)
    if (sessionKey === undefined) throw new Error(`user ${JSON.stringify(user)} has no session_key in ${appid}: log in first`)
    const iv = randomBytes(16)
    const plain = JSON.stringify({ ...data, watermark: { timestamp: unixNow(), appid } })
    const cipher = createCipheriv('aes-128-cbc', Buffer.from(sessionKey, 'base64'), iv)
    const encrypted = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    const { watermark: _ignored, ...clear } = data
    const rawData = JSON.stringify(clear)
    const signature = createHash('sha1').update(rawData + sessionKey, 'utf8').digest('hex')
    return { encryptedData: encrypted.toString('base64'), iv: iv.toString('base64'), rawData, signature }
  }

  return {
    apps,
    /** The default mini program. */
    first,
    /** The secret of each mini program served, by appid. */
    secrets,
    tokens: accessTokens(opts.tokenTtlSec ?? 7200, now),
    loginCodes: oneTimeCodes(),
    phoneCodes: oneTimeCodes(),
    openidOf,
    /** The same in every mini program and official account, as with an open-platform account. */
    unionidOf,
    /** Web authorization of the official accounts (H5 login): ./oauth.ts. */
    oauth: createOAuthState(officialAccounts, { now, openidOf, unionidOf }),
    sessionKeyOf,
    sessionKeyOfOpenid,
    issueSessionKey,
    encryptFor,
    unixNow
  }
}

export type SimulatorState = ReturnType<typeof createState>
