// What of a request's URL reaches a log line (the request serializer's `url`) and a 404's message.
// Kept by what is known to be safe, not dropped by what looks secret: a client puts a token under any
// name, or in the path, so guessing by name let `?refresh=<refresh token>`, `?t=<admin token>` and
// `/auth/<refresh token>` through. The rules (docs/http-api.md, docs/operations.md "Logs"):
// - Query: a value is kept only under a name the gateway's routes take whose values are not secret
//   (LOGGED_PARAMS), when it has the shape the route's schema asks and is not token-shaped; any
//   other value is `[redacted]`. `returnTo` keeps its origin and path, never its query or fragment
//   (the H5 page's address, which WeChat gives a code and a state). A name is kept, and the order,
//   unless the name is token-shaped or not name-like; an item without `=` is kept only when
//   allow-listed.
// - Path: a token-shaped segment (tokenShaped) is `[redacted]`; ids stay readable (a QR id has 22
//   characters, a session id 12, an openid 28, an appid 18).
import { PermissionName, RoleName, ServiceName, VerifyQuery } from '../lib/access-schemas.js'
import { parseRefreshToken, REFRESH_TOKEN_INSIDE } from '../lib/refresh-tokens.js'
import { H5AuthorizeQuery } from '../lib/web-schemas.js'

export const REDACTED = '[redacted]'

// 40 or more characters of base64(url) and dots: no id the gateway takes is that long (the longest,
// an openid, has 28), every secret it hands out is (tickets and QR secrets 43, refresh tokens ~100).
const LONG_RUN = /^[A-Za-z0-9_.=+-]{40,}$/
const JWT = /^([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
// Every JWT's header is a JSON object with a key: `{"`, whatever its length. A dotted id
// (`swagger-ui.min.js`, a user id `a.b.c`) does not decode to one.
const JSON_OBJECT = /^\s*\{\s*"/
const jwtHeader = (base64url: string): boolean => JSON_OBJECT.test(Buffer.from(base64url, 'base64url').toString('latin1'))

/** Whether `text` is a JWT or one of the gateway's refresh tokens (a trace id of 40+ characters is neither). */
export function jwtOrRefreshToken (text: string): boolean {
  if (parseRefreshToken(text) !== null) return true
  const jwt = JWT.exec(text)
  return jwt !== null && jwtHeader(jwt[1] as string)
}

// A JWT from where it starts: its header, a JSON object, is `ey…` in base64url.
const JWT_FROM_HERE = /^(ey[A-Za-z0-9_-]*)\.[A-Za-z0-9_-]+\./

/** Whether a JWT or a refresh token is anywhere in `text`, whatever comes before or after it (`rt.<token>`, `<jwt>-1`). */
export function holdsJwtOrRefreshToken (text: string): boolean {
  if (REFRESH_TOKEN_INSIDE.test(text)) return true
  for (let at = text.indexOf('ey'); at !== -1; at = text.indexOf('ey', at + 1)) {
    const header = JWT_FROM_HERE.exec(text.slice(at))?.[1]
    if (header !== undefined && jwtHeader(header)) return true
  }
  return false
}

// Percent-decoding byte by byte, whatever else the text holds (`%zz`, a lone `%`, `%FF`, which make
// decodeURIComponent throw for the whole text).
const leniently = (text: string): string => text.replace(/%([0-9A-Fa-f]{2})/g, (_escape, hex: string) => String.fromCharCode(parseInt(hex, 16)))

/** Whether `text` holds `secret`: as sent, or percent-decoded up to three times (`%2521` is a `!`), strictly or byte by byte. */
export function holdsSecret (text: string, secret: string): boolean {
  let form = text
  for (let round = 0; round <= 3; round++) {
    if (form.includes(secret) || (decoded(form)?.includes(secret) ?? false)) return true
    const next = leniently(form)
    if (next === form) return false
    form = next
  }
  return false
}

/** Whether `text` (decoded) looks like a credential: a JWT, a refresh token, 40+ base64url/dot characters. */
export function tokenShaped (text: string): boolean {
  return LONG_RUN.test(text) || jwtOrRefreshToken(text)
}

const decoded = (text: string, plus = false): string | null => {
  try { return decodeURIComponent(plus ? text.replaceAll('+', ' ') : text) } catch { return null }
}

// A path without a dot, a percent sign, a fragment or 40 characters between slashes has no
// token-shaped segment: most paths are logged as they are, without a look at each segment.
const MAYBE_TOKEN = /[.%#]|[^/]{40}/
// What may stand between a token and the rest of its segment: `;token=<jwt>`, `Bearer%20<jwt>`,
// `access_token:<jwt>`, quotes, brackets, whitespace, `!`. Each piece is looked at on its own. Not
// `@`, `~` or letters beyond ASCII: a long user id (`alice@engineering.example-corporation.com`) stays readable.
const PIECES = /[\s;:=,!'"`()[\]{}<>]/

/** Whether a segment, as sent or percent-decoded (twice: `%2522` is a quote), holds a token-shaped piece. */
const holdsToken = (segment: string): boolean => {
  const once = decoded(segment) ?? ''
  return [segment, once, decoded(once) ?? ''].some((text) => tokenShaped(text) || text.split(PIECES).some(tokenShaped))
}

/**
 * `path` (no query) with its token-shaped segments `[redacted]`, and a fragment (`#`: sent by no
 * browser, by a client that put a token after it) `#[redacted]`.
 */
export function loggedPath (path: string): string {
  if (!MAYBE_TOKEN.test(path)) return path
  const hash = path.indexOf('#')
  if (hash !== -1) return `${loggedPath(path.slice(0, hash))}#${REDACTED}`
  return path.split('/').map((segment) => holdsToken(segment) ? REDACTED : segment).join('/')
}

type ValueCheck = (value: string) => boolean
const regexOf = (schema: { pattern?: string }): RegExp => {
  if (schema.pattern === undefined) throw new Error('a logged parameter\'s schema has no pattern')
  return new RegExp(schema.pattern)
}
const matching = (schema: { pattern?: string }): ValueCheck => {
  const re = regexOf(schema)
  return (value) => re.test(value)
}
// role and permission: repeated, or comma-separated (lib/access-schemas.ts's Names).
const listOf = (schema: { pattern?: string }): ValueCheck => {
  const re = regexOf(schema)
  return (value) => value.split(',').every((name) => re.test(name))
}
const oneOf = (schema: { anyOf: Array<{ const: unknown }> }): ValueCheck => {
  const values = new Set(schema.anyOf.map((s) => s.const))
  return (value) => values.has(value)
}

/**
 * The query parameters logged with their value: those of GET /auth/verify (VerifyQuery), GET
 * /auth/h5/authorize (H5AuthorizeQuery; returnTo below) and the admin API's unban (service). The
 * H5 appid is logged only of an appid's shape, as /auth/verify's.
 */
const LOGGED_PARAMS = new Map<string, ValueCheck>([
  ['role', listOf(RoleName)],
  ['permission', listOf(PermissionName)],
  ['mode', oneOf(VerifyQuery.properties.mode)],
  ['appid', matching(VerifyQuery.properties.appid)],
  ['service', matching(ServiceName)],
  ['stepUp', matching(VerifyQuery.properties.stepUp)],
  ['scope', oneOf(H5AuthorizeQuery.properties.scope)]
])
const RETURN_TO = 'returnTo'
// A parameter's name as a client writes one; a longer or stranger one is no name but a value.
const NAME_LIKE = /^[A-Za-z0-9_.[\]-]{0,24}$/

/** returnTo as logged: its origin and path (percent-encoded, as sent), `?[redacted]` for the rest. */
function loggedReturnTo (value: string): string {
  let url: URL
  try { url = new URL(value) } catch { return REDACTED }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return REDACTED
  const rest = url.search !== '' || url.hash !== '' ? `%3F${REDACTED}` : ''
  return `${encodeURIComponent(`${url.origin}${loggedPath(url.pathname)}`)}${rest}`
}

/** One `name=value` item of a query string, as logged. */
function loggedParam (pair: string): string {
  if (pair === '') return pair
  const eq = pair.indexOf('=')
  const rawName = eq === -1 ? pair : pair.slice(0, eq)
  const name = decoded(rawName, true)
  const check = name === null ? undefined : LOGGED_PARAMS.get(name)
  if (eq === -1) return check !== undefined || name === RETURN_TO ? pair : REDACTED
  const shownName = name !== null && NAME_LIKE.test(name) && !tokenShaped(name) ? rawName : REDACTED
  const value = decoded(pair.slice(eq + 1), true)
  if (value === null) return `${shownName}=${REDACTED}`
  if (name === RETURN_TO) return `${shownName}=${loggedReturnTo(value)}`
  const kept = check !== undefined && check(value) && !tokenShaped(value)
  return `${shownName}=${kept ? pair.slice(eq + 1) : REDACTED}`
}

/** `url` (path and query) as logged: the rules above. */
export function loggedUrl (url: string): string {
  const hash = url.indexOf('#')
  if (hash !== -1) return `${loggedUrl(url.slice(0, hash))}#${REDACTED}`
  const q = url.indexOf('?')
  if (q === -1) return loggedPath(url)
  return `${loggedPath(url.slice(0, q))}?${url.slice(q + 1).split('&').map(loggedParam).join('&')}`
}
