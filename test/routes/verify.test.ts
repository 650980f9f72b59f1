// GET /auth/verify: forward authentication, through inject and through a real nginx (Debian's
// package, auth_request) in front of the gateway and a dummy upstream when nginx is installed, with
// the snippet docs/operations.md gives.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { test, type Test } from 'tap'
import { createAccessTokens } from '../../lib/access-tokens.js'
import { bearer, buildApp, freePort, JWT_SECRET, login, startRedis, startSim, type Pair, type RedisServer } from '../helper.js'

async function setup (t: Test, opts: { ownRedis?: boolean, logs?: string[] } = {}): Promise<{ app: FastifyInstance, root: Pair, guest: Pair, expired: string, rootSub: string, redis: RedisServer }> {
  const redis = await startRedis(t, { own: opts.ownRedis === true })
  const sim = await startSim(t)
  const rootOpenid = sim.openidOf('root')
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    ...(opts.logs !== undefined ? { logs: opts.logs } : {}),
    resolveUser: async ({ openid }) => openid === rootOpenid
      ? { userId: '用户 42', roles: ['admin', 'ops'], permissions: ['order:*'] }
      // A user id that reads like root's encoded id: it must not reach an upstream as root.
      : { userId: openid === sim.openidOf('eve') ? encodeURIComponent('用户 42') : openid }
  })
  const root = await login(app, 'root.1')
  const guest = await login(app, 'guest.1')
  // A token this gateway signed an hour ago: expired, and genuine.
  const past = createAccessTokens({ secret: JWT_SECRET, issuer: app.wechatAuthConfig.JWT_ISSUER, ttlSec: 60, appids: [app.wechat.appid], store: app.wechatAuthStore, now: () => Date.now() - 3_600_000 })
  const expired = past.sign({ aud: app.wechat.appid, sub: 'x', openid: 'x', sid: 'AAAAAAAAAAAA' }).token
  return { app, root, guest, expired, rootSub: '用户 42', redis }
}

test('forward auth by inject: 200 names the caller in both header conventions; refusals are coded, with WWW-Authenticate', async (t) => {
  const { app, root, guest, expired, rootSub } = await setup(t)
  const verify = async (query: string, token: string) => await app.inject({ method: 'GET', url: `/auth/verify${query}`, headers: bearer(token) })
  const ok = await verify('', root.accessToken)
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers['x-auth-request-user'], encodeURIComponent(rootSub), 'a user id outside printable ASCII is percent-encoded')
  t.equal(ok.headers['remote-user'], encodeURIComponent(rootSub))
  t.equal(ok.headers['x-auth-request-groups'], 'admin,ops')
  t.equal(ok.headers['remote-groups'], 'admin,ops')
  t.equal(ok.headers['x-auth-request-permissions'], 'order:*')
  t.equal(ok.headers['x-auth-request-openid'], root.openid)
  t.equal(ok.headers['x-auth-request-appid'], app.wechat.appid)
  t.match(ok.headers['x-auth-request-session'], /^[A-Za-z0-9_-]{12}$/)
  t.equal(ok.headers['cache-control'], 'no-store')
  t.match(ok.json(), { sub: rootSub, openid: root.openid, appid: app.wechat.appid, roles: ['admin', 'ops'] })
  t.equal((await app.inject({ method: 'HEAD', url: '/auth/verify', headers: bearer(root.accessToken) })).statusCode, 200, 'HEAD too')

  const refusals: Array<[string, string | undefined, number, string, string]> = [
    ['', undefined, 401, 'AUTH_TOKEN_MISSING', 'Bearer realm="wechat-auth"'],
    ['', 'Bearer nope', 401, 'AUTH_TOKEN_INVALID', 'Bearer realm="wechat-auth", error="invalid_token"'],
    ['', `Bearer ${expired}`, 401, 'AUTH_TOKEN_EXPIRED', 'Bearer realm="wechat-auth", error="invalid_token"'],
    ['?role=admin', `Bearer ${guest.accessToken}`, 403, 'AUTH_FORBIDDEN', 'Bearer realm="wechat-auth", error="insufficient_scope"'],
    ['?permission=order:refund&permission=report:read', `Bearer ${root.accessToken}`, 403, 'AUTH_FORBIDDEN', 'Bearer realm="wechat-auth", error="insufficient_scope"'],
    ['?appid=wx00000000000000ff', `Bearer ${root.accessToken}`, 403, 'AUTH_WRONG_APP', 'Bearer realm="wechat-auth", error="insufficient_scope"'],
    // RFC 9470: the token is good, its session must step up (the client keeps it).
    ['?stepUp=60', `Bearer ${root.accessToken}`, 401, 'AUTH_STEP_UP_REQUIRED', 'Bearer realm="wechat-auth", error="insufficient_user_authentication", max_age="60"']
  ]
  for (const [query, authorization, status, code, challenge] of refusals) {
    const res = await app.inject({ method: 'GET', url: `/auth/verify${query}`, headers: authorization === undefined ? {} : { authorization } })
    t.equal(res.statusCode, status, `${query} ${code}`)
    t.equal(res.json().code, code)
    t.equal(res.headers['www-authenticate'], challenge)
    t.equal(res.headers['x-auth-request-user'], undefined, 'no identity on a refusal')
  }
  t.equal((await verify('?role=admin,ops&permission=order:refund', root.accessToken)).statusCode, 200, 'comma-separated; order:* grants order:refund')
  t.equal((await verify('?role=admin&role=auditor&mode=any', root.accessToken)).statusCode, 200, 'mode any')
  t.equal((await verify(`?appid=${app.wechat.appid}`, root.accessToken)).statusCode, 200)
  const eve = await login(app, 'eve.1')
  const eveHeader = (await verify('', eve.accessToken)).headers['x-auth-request-user'] as string
  t.not(eveHeader, ok.headers['x-auth-request-user'], 'two user ids never give the same header')
  t.equal(decodeURIComponent(eveHeader), encodeURIComponent('用户 42'), 'one decoding gives the id back')
  // An empty name (an unset proxy variable) is refused, never read as "no requirement".
  for (const bad of ['?role=has%20space', '?stepUp=0', '?mode=some', '?other=1', '?service=Pay', '?role=', '?role=,', '?permission=', '?role=admin,']) {
    const res = await verify(bad, root.accessToken)
    t.equal(res.statusCode, 400, bad)
    t.equal(res.json().code, 'FST_ERR_VALIDATION', bad)
  }
  t.match((await verify('?stepUp=99999', root.accessToken)).json(), { code: 'FST_ERR_VALIDATION', message: 'querystring: /stepUp must be true or whole seconds from 1 to 86400' }, 'past a day: told what it takes')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(root.accessToken) })).statusCode, 204)
  const revoked = await verify('', root.accessToken)
  t.equal(revoked.json().code, 'AUTH_TOKEN_REVOKED', 'a revoked session, at once')
})

test('forward auth\'s challenge says whether the token is still good: a ban from one service leaves it good (insufficient_scope), an account ban does not', async (t) => {
  const { app, guest } = await setup(t)
  const user = { appid: app.wechat.appid, sub: guest.openid }
  const verify = async (query: string) => await app.inject({ method: 'GET', url: `/auth/verify${query}`, headers: bearer(guest.accessToken) })
  await app.wechatAuthSessions.ban(user, { reason: 'fraud', service: 'pay' })
  const pay = await verify('?service=pay')
  t.same([pay.statusCode, pay.json().code, pay.json().detail?.service], [403, 'AUTH_ACCOUNT_BANNED', 'pay'])
  t.equal(pay.headers['www-authenticate'], 'Bearer realm="wechat-auth", error="insufficient_scope"', 'a ban from one service')
  t.equal((await verify('?service=shop')).statusCode, 200, 'the token still serves the rest')
  await app.wechatAuthSessions.ban(user, { reason: 'fraud' })
  const account = await verify('')
  t.same([account.statusCode, account.json().code], [403, 'AUTH_ACCOUNT_BANNED'])
  t.equal(account.headers['www-authenticate'], 'Bearer realm="wechat-auth", error="invalid_token"', 'an account ban ended the session: the token is good for nothing')
})

test('forward auth\'s debug log of a refusal: the forwarded method and first path segment, a token-shaped one redacted as in the request log', async (t) => {
  const logs: string[] = []
  const { app, root } = await setup(t, { logs })
  const refused = async (uri: string): Promise<Record<string, unknown>> => {
    logs.length = 0
    const res = await app.inject({ method: 'GET', url: '/auth/verify', headers: { authorization: 'Bearer nope', 'x-forwarded-method': 'POST', 'x-forwarded-uri': uri } })
    t.equal(res.statusCode, 401)
    const line = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'forward auth refused')
    t.ok(line, `a debug line for ${uri.slice(0, 20)}…`)
    t.notOk(logs.join('\n').includes(uri.slice(1, 21)), 'no piece of the token in any line')
    return line ?? {}
  }
  t.match(await refused(`/${root.refreshToken}/orders?x=1`), { forwardedMethod: 'POST', forwardedUri: '/[redacted]', code: 'AUTH_TOKEN_INVALID' }, 'a refresh token')
  t.match(await refused(`/${root.accessToken}`), { forwardedUri: '/[redacted]' }, 'an access token')
  t.match(await refused(`/t=${root.refreshToken}`), { forwardedUri: '/[redacted]' }, 'a token after a name')
  logs.length = 0
  await app.inject({ method: 'GET', url: '/auth/verify', headers: { authorization: 'Bearer nope', 'x-forwarded-uri': '/orders/42?token=abc' } })
  t.match(logs.join('\n'), /"forwardedUri":"\/orders"/, 'an ordinary segment stays readable, the rest and the query are left out')
  // A proxy (or a client calling the gateway itself) that sends a path without its leading slash, or
  // with an encoded one: still the first segment only.
  for (const [uri, first] of [['api/sk_live_51HxYzAbCdEfGhIjKlMn', 'api'], ['secretsegment/second/third', 'secretsegment'], ['/a%2Fsk_live_51HxYz/x', '/a'], ['//sk_live_51HxYz/x', '/']]) {
    logs.length = 0
    await app.inject({ method: 'GET', url: '/auth/verify', headers: { authorization: 'Bearer nope', 'x-forwarded-uri': uri } })
    t.match(logs.join('\n'), `"forwardedUri":"${first}"`, `${uri}: ${first}`)
    t.notMatch(logs.join('\n'), /sk_live|second/, 'nothing after it')
  }
})

test('forward auth with Redis frozen or down: 503 STORE_UNAVAILABLE without a challenge, so a proxy does not have the client drop its token', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis })
  // Strict: every request asks Redis (the tracked copy would answer from memory for 500 ms after it froze).
  const strict = await buildApp(t, { sim, redisServer: redis, config: { ACCESS_CHECK: 'strict', STORE_TIMEOUT_MS: 300 } })
  const pair = await login(app, 'hal.1')
  const verify = async (on: FastifyInstance, query: string) => await on.inject({ method: 'GET', url: `/auth/verify${query}`, headers: bearer(pair.accessToken) })
  t.equal((await verify(app, '')).statusCode, 200)
  const outage = async (on: FastifyInstance, how: string): Promise<void> => {
    for (const query of ['', '?role=admin']) {
      const res = await verify(on, query)
      t.same([res.statusCode, res.json().code], [503, 'STORE_UNAVAILABLE'], `${how}: a good token${query}`)
      t.equal(res.headers['www-authenticate'], undefined, `${how}: no error="invalid_token" on a 503`)
      t.equal(res.headers['cache-control'], 'no-store')
    }
  }
  redis.pause()
  t.teardown(() => { redis.resume() })
  await outage(strict, 'frozen')
  redis.resume()
  await redis.stop()
  await outage(app, 'down')
  const bad = await app.inject({ method: 'GET', url: '/auth/verify', headers: { authorization: 'Bearer nope' } })
  t.same([bad.statusCode, bad.json().code], [401, 'AUTH_TOKEN_INVALID'], 'a bad token is refused without the store')
  t.equal(bad.headers['www-authenticate'], 'Bearer realm="wechat-auth", error="invalid_token"', 'with its challenge')
})

const nginxBinary = ['nginx', '/usr/sbin/nginx'].find((b) => spawnSync(b, ['-v']).error === undefined) ?? null

test('an openid or unionid a header cannot carry as it is (a token signed with the key, CR LF in it) is encoded, never a 500', async (t) => {
  const { app, root, rootSub } = await setup(t)
  const me = (await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(root.accessToken) })).json<{ sessionId: string }>()
  const odd = app.wechatAuthTokens.sign({ aud: app.wechat.appid, sub: rootSub, openid: 'o\r\nX-Auth-Request-Groups: admin', unionid: 'u\r\nx', sid: me.sessionId }).token
  const res = await app.inject({ method: 'GET', url: '/auth/verify', headers: bearer(odd) })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['x-auth-request-openid'], encodeURIComponent('o\r\nX-Auth-Request-Groups: admin'))
  t.equal(res.headers['x-auth-request-unionid'], 'u%0D%0Ax')
  t.equal(res.headers['x-auth-request-groups'], 'admin,ops', 'the caller\'s own roles, nothing injected')
})

test('forward auth through a real nginx (auth_request, the docs\' snippet) in front of the gateway and an upstream', { skip: nginxBinary === null ? 'nginx is not installed (.ci/run installs it)' : false }, async (t) => {
  const { app, root, guest, expired, rootSub, redis } = await setup(t, { ownRedis: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const gatewayPort = (app.server.address() as { port: number }).port
  // The upstream answers with the headers it received (large ones too: nginx passes them on).
  const upstream = createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(req.headers)) })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.close() })
  const upstreamPort = (upstream.address() as { port: number }).port
  const [port, adminPort] = [await freePort(), await freePort()]
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'))
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, nginxConf(dir, { port, adminPort, gateway: gatewayPort, upstream: upstreamPort }))
  const nginx = spawn(nginxBinary as string, ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')], { stdio: 'ignore' })
  t.teardown(async () => {
    nginx.kill('SIGQUIT')
    if (nginx.exitCode === null && nginx.signalCode === null) await new Promise((resolve) => nginx.once('exit', resolve))
    rmSync(dir, { recursive: true, force: true })
  })
  const get = async (path: string, headers: Record<string, string> = {}, on = port): Promise<{ status: number, headers: IncomingHttpHeaders, body: string }> =>
    await new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: on, path, headers }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => { body += c.toString() })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
      })
      req.on('error', reject)
      req.end()
    })
  for (let i = 0; i < 100; i++) {
    if (await get('/api/x').then(() => true, () => false)) break
    await sleep(50)
  }
  const ok = await get('/api/orders?page=2', { ...bearer(root.accessToken), 'x-auth-request-user': 'spoofed' })
  t.equal(ok.status, 200)
  const seen = JSON.parse(ok.body) as Record<string, string>
  t.equal(decodeURIComponent(seen['x-auth-request-user'] ?? ''), rootSub, 'the upstream gets the caller; a client\'s own header is replaced')
  t.equal(seen['remote-groups'], 'admin,ops')
  t.equal(seen.authorization, `Bearer ${root.accessToken}`, 'the upstream still gets the request\'s own headers')

  // A caller without roles forges every identity header the gateway sends (and one it never does):
  // each reaches the upstream as the gateway said, or not at all.
  const nounion = await login(app, 'nounion.1')
  const answer = await app.inject({ method: 'GET', url: '/auth/verify', headers: bearer(nounion.accessToken) })
  const identity = Object.keys(answer.headers).filter((h) => /^(x-auth-request-|remote-)/.test(h))
  t.ok(identity.length >= 8, `the gateway's identity headers: ${identity.join(', ')}`)
  const forged = Object.fromEntries([...identity, 'x-auth-request-unionid', 'remote-email'].map((h) => [h, h.endsWith('groups') ? 'admin' : h.endsWith('permissions') ? '*' : 'forged']))
  const through = JSON.parse((await get('/api/x', { ...forged, ...bearer(nounion.accessToken) })).body) as Record<string, string>
  for (const h of Object.keys(forged)) {
    const gateway = answer.headers[h] === '' ? undefined : answer.headers[h]
    t.equal(through[h], gateway, `${h}: ${gateway === undefined ? 'dropped' : 'the gateway\'s'}, never the client's`)
  }

  t.equal((await get('/api/x')).status, 401, 'no token')
  const expiredAnswer = await get('/api/x', bearer(expired))
  t.equal(expiredAnswer.status, 401, 'an expired token')
  t.equal(expiredAnswer.headers['www-authenticate'], 'Bearer realm="wechat-auth", error="invalid_token"', 'the challenge reaches the client (nginx passes it on a 401)')
  const forbidden = await get('/api/x', bearer(guest.accessToken), adminPort)
  t.equal(forbidden.status, 403, 'a location that asks for a role')
  t.equal(forbidden.headers['www-authenticate'], 'Bearer realm="wechat-auth", error="insufficient_scope"', 'the challenge on a 403 too: keep the token')
  t.equal((await get('/api/x', bearer(root.accessToken), adminPort)).status, 200)
  // Every role and permission the gateway takes, of the longest names: some 9 KiB of identity headers.
  const many = await login(app, 'many.1')
  const name = (prefix: string, i: number): string => `${prefix}${String(i).padStart(2, '0')}`.padEnd(64, 'x')
  await app.wechatAuthSessions.setAccess({ appid: app.wechat.appid, sub: many.openid }, { roles: Array.from({ length: 32 }, (_, i) => name('role', i)), permissions: Array.from({ length: 64 }, (_, i) => name('perm:', i)) })
  const full = await get('/api/x', bearer(many.accessToken))
  t.equal(full.status, 200, 'a user with every role and permission passes (not nginx\'s 500 "upstream sent too big header")')
  t.equal((JSON.parse(full.body) as Record<string, string>)['x-auth-request-permissions']?.split(',').length, 64, 'and the upstream gets them all')
  // Headers the gateway would refuse (16 KiB in all: 431, a 500 from nginx) are not sent to it.
  const large = Object.fromEntries([1, 2, 3].map((i) => [`x-large-${i}`, 'x'.repeat(7000)]))
  t.equal((await get('/api/x', { ...large, ...bearer(root.accessToken) })).status, 200, 'large client headers: only the token goes to the gateway')
  const sessionId = JSON.parse((await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(guest.accessToken) })).body).sessionId as string
  await app.wechatAuthSessions.kick({ appid: app.wechat.appid, sub: guest.openid }, { sid: sessionId, reason: 'test' })
  t.equal((await get('/api/x', bearer(guest.accessToken))).status, 401, 'a revoked (kicked) session, at once')
  await redis.stop()
  t.equal((await get('/api/x', bearer(root.accessToken))).status, 503, 'Redis down: the gateway\'s 503 reaches the client as a 503, not nginx\'s 500')
})

/** The nginx snippet of docs/operations.md, as written there but for its ports: once as is, once asking for a role. */
function docsSnippet (gateway: number, upstream: number, query = ''): string {
  const docs = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8')
  const snippet = /nginx \(`auth_request`[\s\S]*?```nginx\n([\s\S]*?)```/.exec(docs)?.[1]
  const swap = (text: string, from: string, to: string): string => {
    if (!text.includes(from)) throw new Error(`docs/operations.md's nginx snippet no longer has ${from}`)
    return text.replaceAll(from, to)
  }
  if (snippet === undefined) throw new Error('docs/operations.md has no nginx snippet')
  return swap(swap(swap(snippet, '127.0.0.1:3000/auth/verify;', `127.0.0.1:3000/auth/verify${query};`), '127.0.0.1:3000', `127.0.0.1:${gateway}`), '127.0.0.1:8080', `127.0.0.1:${upstream}`)
}

function nginxConf (dir: string, ports: { port: number, adminPort: number, gateway: number, upstream: number }): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${join(dir, k)};`).join('\n  ')
  return `worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
events { worker_connections 64; }
http {
  access_log off;
  ${temp}
  large_client_header_buffers 4 8k;
  server {
    listen 127.0.0.1:${ports.port};
    ${docsSnippet(ports.gateway, ports.upstream)}
  }
  server {
    listen 127.0.0.1:${ports.adminPort};
    ${docsSnippet(ports.gateway, ports.upstream, '?role=admin')}
  }
}
`
}
