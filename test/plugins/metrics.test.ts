// Prometheus metrics through the gateway (plugins/metrics.ts, lib/metrics.ts): the counters move as
// logins, refreshes, a refresh-token reuse, logouts, a rate-limit refusal, a WeChat error, an
// access_token renewal and a store outage happen; labels are templates and codes, never a secret.
import { test } from 'tap'
import { Registry } from 'prom-client'
import Fastify from 'fastify'
import wechatAuth from '../../app.js'
import { bearer, buildApp, login, me, refresh, startRedis, startSim } from '../helper.js'
import { parseMetrics, valueOf, type Sample } from '../prometheus.js'

const scrape = async (registry: Registry): Promise<Sample[]> => parseMetrics(await registry.metrics())

test('the counters move with what happens, labelled by template and code', async (t) => {
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, metrics: true, config: { REFRESH_GRACE_SECONDS: 0, RATE_LIMIT_LOGIN_MAX: 4 } })
  const registry = app.wechatAuthMetrics.registry

  const first = await login(app, 'mia.1')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'mia.1' } })).json().code, 'WX_CODE_USED')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'invalid.1' } })).json().code, 'WX_CODE_INVALID')
  const renewed = (await refresh(app, first.refreshToken)).json<{ refreshToken: string, accessToken: string }>()
  // The new pair is in use: the old refresh token coming back now is reuse, not a lost answer retried.
  t.equal((await me(app, renewed.accessToken)).statusCode, 200)
  t.equal((await refresh(app, first.refreshToken)).json().code, 'AUTH_REFRESH_REUSED')
  t.equal((await refresh(app, 'not-a-token')).json().code, 'AUTH_REFRESH_INVALID')
  const second = await login(app, 'mia.2')
  const limited = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'mia.3' } })
  t.equal(limited.json().code, 'RATE_LIMITED', limited.body)
  t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(second.accessToken) })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(second.accessToken) })).statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/no/such/path/mia-secret-path' })).statusCode, 404)
  await app.wechat.getAccessToken()
  const qr = (await app.inject({ method: 'POST', url: '/auth/qr' })).json<{ id: string }>()
  t.equal((await app.inject(`/auth/qr/${qr.id}/image`)).statusCode, 200, 'a QR login\'s code image, made by WeChat')

  let s = await scrape(registry)
  const http = 'wechat_auth_http_request_duration_seconds_count'
  t.equal(valueOf(s, http, { method: 'POST', route: '/auth/login', status_code: '200' }), 2, 'two logins answered 200')
  t.equal(valueOf(s, http, { method: 'POST', route: '/auth/login', status_code: '429' }), 1)
  t.equal(valueOf(s, http, { method: 'GET', route: '/auth/me', status_code: '200' }), 2)
  t.equal(valueOf(s, http, { route: 'unmatched', status_code: '404' }), 1, 'a path no route matched is one label, not the path')
  t.equal(valueOf(s, 'wechat_auth_errors_total', { code: 'WX_CODE_USED' }), 1)
  t.equal(valueOf(s, 'wechat_auth_rate_limited_total', { route: '/auth/login' }), 1)
  t.equal(valueOf(s, 'wechat_auth_logins_total', { outcome: 'ok' }), 2)
  t.equal(valueOf(s, 'wechat_auth_logins_total', { outcome: 'WX_CODE_USED' }), 1)
  t.equal(valueOf(s, 'wechat_auth_logins_total', { outcome: 'WX_CODE_INVALID' }), 1, 'WeChat\'s errcode 40029, mapped')
  t.equal(valueOf(s, 'wechat_auth_sessions_opened_total', { device_type: 'mp', outcome: 'ok' }), 2)
  t.equal(valueOf(s, 'wechat_auth_refreshes_total', { outcome: 'rotated' }), 1)
  t.equal(valueOf(s, 'wechat_auth_refreshes_total', { outcome: 'reuse_detected' }), 1)
  t.equal(valueOf(s, 'wechat_auth_refreshes_total', { outcome: 'invalid' }), 1)
  t.equal(valueOf(s, 'wechat_auth_revocations_total', { reason: 'reuse' }), 1)
  t.equal(valueOf(s, 'wechat_auth_revocations_total', { reason: 'logout' }), 1)
  t.equal(valueOf(s, 'wechat_auth_wechat_call_duration_seconds_count', { endpoint: '/sns/jscode2session', outcome: 'ok' }), 2)
  t.equal(valueOf(s, 'wechat_auth_wechat_call_duration_seconds_count', { endpoint: '/sns/jscode2session', outcome: 'WX_CODE_INVALID' }), 1)
  t.equal(valueOf(s, 'wechat_auth_access_token_renewals_total', { appid: sim.appid, outcome: 'ok' }), 1)
  t.equal(valueOf(s, 'wechat_auth_wechat_call_duration_seconds_count', { endpoint: '/wxa/getwxacodeunlimit', outcome: 'ok' }), 1, 'the code image is a WeChat call too')
  t.ok(valueOf(s, 'wechat_auth_store_operation_duration_seconds_count', { operation: 'checkAccess', outcome: 'ok' }) >= 1, 'the store\'s operations are timed')
  t.ok(valueOf(s, 'wechat_auth_store_operation_duration_seconds_count', { operation: 'createSession', outcome: 'ok' }) === 2)
  t.ok(s.some((x) => x.name === 'nodejs_eventloop_lag_seconds'), 'Node\'s default metrics, event-loop lag among them')

  // Redis goes away: the 503 is counted, with the store's code.
  await redis.stop()
  t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(first.accessToken) })).json().code, 'STORE_UNAVAILABLE')
  t.equal((await app.inject({ method: 'GET', url: '/health' })).json().code, 'STORE_UNAVAILABLE', 'the readiness probe answers its 503 without throwing')
  s = await scrape(registry)
  t.equal(valueOf(s, http, { method: 'GET', route: '/auth/me', status_code: '503' }), 1)
  t.equal(valueOf(s, 'wechat_auth_errors_total', { code: 'STORE_UNAVAILABLE' }), 2, 'the request\'s and the probe\'s')
  t.equal(valueOf(s, 'wechat_auth_store_operation_duration_seconds_count', { operation: 'checkAccess', outcome: 'STORE_UNAVAILABLE' }), 1)

  const secrets = [first.accessToken, first.refreshToken, renewed.refreshToken, second.accessToken, second.refreshToken, 'mia.1', 'mia.2', 'mia-secret-path',
    sim.openidOf('mia'), sim.sessionKeyOf('mia') ?? 'none', sim.secret, JSON.parse(Buffer.from(second.accessToken.split('.')[1] ?? '', 'base64url').toString()).sid]
  const values = s.flatMap((x) => Object.values(x.labels)).join('\n')
  for (const secret of secrets) t.notOk(values.includes(secret), 'no token, code, path, openid or session id in a label')
})

test('a host\'s wildcard and patterned routes keep their templates as labels, never the path', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, {
    sim,
    metrics: true,
    extend: (host) => {
      host.get('/files/*', async () => ({ ok: true }))
      host.get('/items/:id(^\\d+)', async () => ({ ok: true }))
    }
  })
  for (const url of ['/files/a/b.txt', '/files/c', '/items/42', '/items/7']) t.equal((await app.inject({ url })).statusCode, 200, url)
  const s = await scrape(app.wechatAuthMetrics.registry)
  const http = 'wechat_auth_http_request_duration_seconds_count'
  t.equal(valueOf(s, http, { method: 'GET', route: '/files/*', status_code: '200' }), 2, 'the wildcard route, as its template')
  t.equal(valueOf(s, http, { method: 'GET', route: '/items/:id(^\\d+)', status_code: '200' }), 2, 'the patterned route, as its template')
  t.notOk(s.some((x) => x.name === http && x.labels.route === 'other'), 'none as other')
})

test('the access check\'s read copy is counted at each scrape, from its own counters: misses, hits, its size', async (t) => {
  // Its own Redis: another file's FLUSHDB on a shared one would empty the copy (an invalidation of everything).
  const redis = await startRedis(t, { own: true })
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, redisServer: redis, metrics: true })
  const strict = await buildApp(t, { sim, redisServer: redis, metrics: true, config: { ACCESS_CHECK: 'strict' } })
  const reads = 'wechat_auth_access_cache_reads_total'
  for (const gateway of [app, strict]) {
    // Two users: the strict gateway's writes (the first use of a token marks its rotation delivered) would drop the copy's entry.
    const { accessToken } = await login(gateway, gateway === app ? 'ana.1' : 'bob.1')
    for (let i = 0; i < 4; i++) t.equal((await me(gateway, accessToken)).statusCode, 200)
  }
  const s = await scrape(app.wechatAuthMetrics.registry)
  const [hit, miss] = [valueOf(s, reads, { outcome: 'hit' }), valueOf(s, reads, { outcome: 'miss' })]
  t.ok(miss >= 1 && hit >= 2, `the first check reads Redis, later ones the copy (${hit} hits, ${miss} misses)`)
  t.equal(hit + miss + valueOf(s, reads, { outcome: 'uncached' }), 4, 'one read per authenticated request')
  t.ok(valueOf(s, 'wechat_auth_access_cache_entries') >= 1)
  t.equal(valueOf(await scrape(app.wechatAuthMetrics.registry), reads, { outcome: 'hit' }), hit, 'a second scrape counts nothing twice')
  const strictSamples = await scrape(strict.wechatAuthMetrics.registry)
  t.equal(valueOf(strictSamples, reads), 0, 'ACCESS_CHECK=strict: no read copy, nothing counted')
  t.equal(valueOf(strictSamples, 'wechat_auth_access_cache_entries'), 0)
})

test('a host\'s registry, without default or per-route metrics; options checked at boot', async (t) => {
  const sim = await startSim(t)
  const registry = new Registry()
  const app = await buildApp(t, { sim, metrics: { registry, defaultMetrics: false, http: false } })
  t.equal(app.wechatAuthMetrics.registry, registry)
  await login(app, 'noah.1')
  const s = await scrape(registry)
  t.equal(valueOf(s, 'wechat_auth_logins_total', { outcome: 'ok' }), 1)
  t.notOk(s.some((x) => x.name.startsWith('nodejs_') || x.name.startsWith('process_')), 'no default metrics')
  t.notOk(s.some((x) => x.name.startsWith('wechat_auth_http_')), 'no per-route requests')
  t.notOk(registry.getSingleMetric('wechat_auth_http_request_duration_seconds'), 'not even an empty histogram: the name stays the host\'s')

  await app.close()
  t.same((await registry.getMetricsAsJSON()).map((m) => m.name), [], 'closed, the gateway takes its metrics out of the host\'s registry')
  const again = await buildApp(t, { sim, metrics: { registry, defaultMetrics: false } })
  t.ok(again.wechatAuthMetrics.registry.getSingleMetric('wechat_auth_logins_total'), 'so that a new gateway can register them again')
  await again.close()
  const withDefaults = new Registry()
  const { collectDefaultMetrics } = await import('prom-client')
  collectDefaultMetrics({ register: withDefaults })
  const own = withDefaults.getMetricsAsArray().length
  await t.rejects(buildApp(t, { sim, metrics: { registry: withDefaults } }), { code: 'CONFIG_INVALID', message: /metrics.registry already holds a metric the gateway registers .*pass defaultMetrics: false/ })
  t.equal(withDefaults.getMetricsAsArray().length, own, 'and nothing of the gateway\'s is left in it')

  for (const [metrics, message] of [
    [{ registy: registry }, /: metrics: registy is not an option \(the options: registry, defaultMetrics, http\)$/],
    [{ registry: {} }, /: metrics: option registry must be a prom-client Registry$/],
    [{ http: 'yes' }, /: metrics: option http must be true or false$/],
    [{ prefix: '/m' }, /: metrics: prefix: Fastify ignores it for this plugin, .*; it serves no route: give wechatAuthMetricsRoute its path/]
  ] as const) {
    const host = Fastify()
    t.teardown(async () => await host.close())
    await t.rejects(async () => { await host.register(wechatAuth, { config: { WECHAT_APPID: sim.appid, WECHAT_SECRET: sim.secret, WECHAT_API_BASE: sim.url, LOG_LEVEL: 'silent' }, metrics: metrics as never }) }, { code: 'CONFIG_INVALID', message })
  }
})
