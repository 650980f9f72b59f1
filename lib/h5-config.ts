// H5 login's configuration (part of lib/config.ts's checks): on or off, the official account, and
// the pages WeChat may send the browser back to. Messages name the key and the entry, never a value.
import { ConfigError } from './errors.js'
import type { Config, WechatApp } from './schemas.js'

/** H5 login, when on: the official account (none: the development simulator's) and H5_RETURN_URLS. */
export interface H5Config {
  account?: WechatApp
  returnUrls: URL[]
}

/**
 * H5 login: on with WECHAT_OA_APPID and WECHAT_OA_SECRET and H5_RETURN_URLS; in development with the
 * simulator, H5_RETURN_URLS alone turns it on with the simulator's official account; off otherwise.
 */
export function h5Of (config: Config, production: boolean, apps: WechatApp[], simulated: boolean): H5Config | undefined {
  const { WECHAT_OA_APPID: appid, WECHAT_OA_SECRET: secret, H5_RETURN_URLS: returnUrls } = config
  if ((appid === undefined) !== (secret === undefined)) throw new ConfigError('WECHAT_OA_APPID and WECHAT_OA_SECRET must be set together')
  if (appid !== undefined && apps.some((app) => app.appid === appid)) throw new ConfigError('WECHAT_OA_APPID is a mini program\'s appid: an official account has an appid of its own')
  if (production && !config.WECHAT_OA_AUTHORIZE_URL.startsWith('https://')) throw new ConfigError('NODE_ENV=production requires an https:// WECHAT_OA_AUTHORIZE_URL')
  if (appid !== undefined && returnUrls === undefined) throw new ConfigError('WECHAT_OA_APPID needs H5_RETURN_URLS: the pages WeChat may send the browser back to')
  if (appid === undefined && returnUrls !== undefined && !simulated) {
    throw new ConfigError('H5_RETURN_URLS needs WECHAT_OA_APPID and WECHAT_OA_SECRET (H5 login is off without them)')
  }
  if (returnUrls === undefined) return undefined
  return {
    ...(appid !== undefined && secret !== undefined ? { account: { appid, secret } } : {}),
    returnUrls: returnUrls.split(',').map((page, i) => returnUrlOf(page.trim(), i, production))
  }
}

/** One entry of H5_RETURN_URLS: an absolute http(s) URL (https in production), no credentials, query or fragment. */
function returnUrlOf (page: string, i: number, production: boolean): URL {
  let url: URL
  try {
    url = new URL(page)
  } catch {
    throw new ConfigError(`H5_RETURN_URLS: entry ${i + 1} is not an absolute URL`)
  }
  if (url.protocol !== 'https:' && (production || url.protocol !== 'http:')) {
    throw new ConfigError(`H5_RETURN_URLS: entry ${i + 1} must be https://${production ? '' : ' (or http:// in development)'}`)
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new ConfigError(`H5_RETURN_URLS: entry ${i + 1} must have no credentials, query or fragment (a returnTo may add a query)`)
  }
  // `https://h5.example.com` reads as `https://h5.example.com/`, which allows every page of the origin,
  // where an entry not ending with `/` allows only itself: which was meant is not guessed.
  if (!/^[a-z][a-z\d+.-]*:\/\/[^/?#]*\//i.test(page)) {
    throw new ConfigError(`H5_RETURN_URLS: entry ${i + 1} has no path: end it with / to allow every page of its origin, or name the page`)
  }
  return url
}
