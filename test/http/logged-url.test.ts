// What of a URL is logged (http/logged-url.ts): query values only under the names the gateway's
// routes take and of their shape, returnTo's origin and path, token-shaped path segments redacted;
// ids stay readable. Tokens made as the gateway makes them.
import { test } from 'tap'
import { loggedPath, loggedUrl, tokenShaped } from '../../http/logged-url.js'
import { createAccessTokens } from '../../lib/access-tokens.js'
import { randomId } from '../../lib/ids.js'
import { refreshTokens } from '../../lib/refresh-tokens.js'
import { JWT_SECRET } from '../helper.js'

const APPID = 'wx0123456789abcdef'
const REFRESH = refreshTokens(JWT_SECRET).first({ tag: randomId(12), sid: randomId(9) })
const JWT = createAccessTokens({ secret: JWT_SECRET, issuer: 'test', ttlSec: 900, appids: [APPID], store: { checkAccess: async () => 'revoked' } }).sign({ aud: APPID, sub: 'u1', openid: 'o1', sid: randomId(9) }).token
const QR_SECRET = randomId(32)
const OPENID = 'oAbC1234567890_abcdefghijklm'

test('the shapes of the gateway\'s secrets are token-shaped; its ids are not', async (t) => {
  for (const secret of [REFRESH, JWT, QR_SECRET, `${JWT.split('.').slice(0, 2).join('.')}.`, 'a'.repeat(40)]) t.ok(tokenShaped(secret), secret.slice(0, 20))
  for (const id of [randomId(16), randomId(9), OPENID, APPID, 'alice.smith.jr', 'swagger-ui-bundle.js.map', 'order:refund', 'a'.repeat(39)]) t.notOk(tokenShaped(id), id)
})

test('query values are redacted under any name but those the routes take, and of their shape', async (t) => {
  t.equal(loggedUrl(`/auth/me?refresh=${REFRESH}`), '/auth/me?refresh=[redacted]')
  t.equal(loggedUrl(`/auth/refresh?x=${JWT}`), '/auth/refresh?x=[redacted]')
  t.equal(loggedUrl('/apps/wx0123456789abcdef/users/u1?t=admin-token-0123'), '/apps/wx0123456789abcdef/users/u1?t=[redacted]', 'the admin token, short and under a short name')
  t.equal(loggedUrl('/auth/me?page=2&SECRETCODE123&=x&'), '/auth/me?page=[redacted]&[redacted]&=[redacted]&', 'an item without a value is no name the gateway takes')
  const verify = `/auth/verify?role=admin,editor&role=ops&permission=order:*&mode=any&appid=${APPID}&service=pay&stepUp=300`
  t.equal(loggedUrl(verify), verify, 'GET /auth/verify\'s parameters stay')
  t.equal(loggedUrl(`/auth/verify?role=${JWT}&appid=0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P&mode=x&stepUp=${REFRESH}`),
    '/auth/verify?role=[redacted]&appid=[redacted]&mode=[redacted]&stepUp=[redacted]', 'a name the routes take, a value not of its shape or token-shaped')
  t.equal(loggedUrl(`/auth/me?${'a'.repeat(25)}=1&${REFRESH}=1&%74oken=x`), '/auth/me?[redacted]=[redacted]&[redacted]=[redacted]&%74oken=[redacted]', 'a name not name-like is itself redacted; names stay as sent')
  t.equal(loggedUrl('/auth/me?role=%E0%A4%A'), '/auth/me?role=[redacted]', 'a value that does not decode')
})

test('returnTo keeps its origin and path, never its query or fragment', async (t) => {
  const page = 'https://h5.example.com/app/?code=CODE0123456789&state=STATE0123456789#ticket=T'
  t.equal(loggedUrl(`/auth/h5/authorize?scope=snsapi_userinfo&returnTo=${encodeURIComponent(page)}&appid=${APPID}`),
    `/auth/h5/authorize?scope=snsapi_userinfo&returnTo=https%3A%2F%2Fh5.example.com%2Fapp%2F%3F[redacted]&appid=${APPID}`)
  t.equal(loggedUrl('/auth/h5/authorize?returnTo=https%3A%2F%2Fh5.example.com%2Fapp%2F'), '/auth/h5/authorize?returnTo=https%3A%2F%2Fh5.example.com%2Fapp%2F', 'nothing to hide')
  t.equal(loggedUrl('/auth/h5/authorize?returnTo=https%3A%2F%2Fuser%3Apass%40h5.example.com%2Fp'), '/auth/h5/authorize?returnTo=https%3A%2F%2Fh5.example.com%2Fp', 'no credentials of the URL')
  t.equal(loggedUrl(`/auth/h5/authorize?returnTo=${encodeURIComponent(`https://h5.example.com/${REFRESH}/`)}`), '/auth/h5/authorize?returnTo=https%3A%2F%2Fh5.example.com%2F%5Bredacted%5D%2F', 'its path as a path')
  t.equal(loggedUrl('/auth/h5/authorize?returnTo=javascript%3Aalert(CODE)&scope=snsapi_base'), '/auth/h5/authorize?returnTo=[redacted]&scope=snsapi_base', 'not an http(s) URL')
  t.equal(loggedUrl('/auth/h5/authorize?returnTo=CODE0123456789'), '/auth/h5/authorize?returnTo=[redacted]', 'not a URL')
})

test('token-shaped path segments are redacted; ids stay readable', async (t) => {
  t.equal(loggedPath(`/auth/${REFRESH}`), '/auth/[redacted]')
  t.equal(loggedPath(`/auth/qr/${QR_SECRET}/token`), '/auth/qr/[redacted]/token')
  t.equal(loggedPath(`/auth/${JWT}/x`), '/auth/[redacted]/x')
  t.equal(loggedPath(`/auth/${JWT.replaceAll('.', '%2E')}`), '/auth/[redacted]', 'percent-encoded')
  t.equal(loggedUrl(`/auth/${REFRESH}?role=admin`), '/auth/[redacted]?role=admin')
  for (const path of [`/auth/qr/${randomId(16)}/events`, `/auth/sessions/${randomId(9)}`, `/admin/apps/${APPID}/openids/${OPENID}/ban`,
    `/admin/apps/${APPID}/users/alice.smith.jr/kick`, '/docs/static/swagger-ui-bundle.js.map', '/health/live', '/',
    // Long user ids (up to 256 characters) with @, ~ or letters beyond ASCII around a 40+ character run.
    `/admin/apps/${APPID}/users/alice%40engineering.subsidiary.example-corporation.com`, `/admin/apps/${APPID}/users/urn~org~platform-engineering.infrastructure.team.alice`,
    `/admin/apps/${APPID}/users/%E7%94%A8%E6%88%B7.%E5%BC%A0%E4%B8%89.engineering-department.beijing-office.cn`]) {
    t.equal(loggedPath(path), path, path)
  }
})

test('a token with something else in its segment, or after a #, is redacted too', async (t) => {
  const cases: Array<[string, string]> = [
    [`/auth/me#${JWT}`, '/auth/me#[redacted]'],
    [`/auth/me?role=admin#${JWT}`, '/auth/me?role=admin#[redacted]'],
    [`/auth/x;token=${JWT}`, '/auth/[redacted]'],
    [`/auth/Bearer%20${JWT}`, '/auth/[redacted]'],
    [`/auth/access_token:${JWT}`, '/auth/[redacted]'],
    [`/auth/a,${JWT}/me`, '/auth/[redacted]/me'],
    // Punctuation around it, a tab, double percent-encoding (a probe's list).
    [`/auth/%22${REFRESH}%22`, '/auth/[redacted]'],
    [`/auth/(${JWT})`, '/auth/[redacted]'],
    [`/auth/${JWT}!`, '/auth/[redacted]'],
    [`/auth/Bearer%09${JWT}`, '/auth/[redacted]'],
    [`/auth/%2522${REFRESH}%2522`, '/auth/[redacted]'],
    [`/auth/[${QR_SECRET}]`, '/auth/[redacted]'],
    [`/auth/'${JWT}'/me`, '/auth/[redacted]/me']
  ]
  for (const [url, logged] of cases) t.equal(loggedUrl(url), logged, url.slice(0, 30))
  t.equal(loggedPath(`/auth/me#${JWT}`), '/auth/me#[redacted]', 'the 404 message\'s path too')
  t.equal(loggedUrl('/auth/sessions/AbCdEfGhIjKl'), '/auth/sessions/AbCdEfGhIjKl', 'an id stays')
  t.equal(loggedUrl('/admin/apps/wx0123456789abcdef/users/a.b;c=d'), '/admin/apps/wx0123456789abcdef/users/a.b;c=d', 'a user id with ; and = stays when no piece is token-shaped')
})
