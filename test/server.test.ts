// The standalone process as `npm start` runs it (dist/server.js, built by `npm test` first):
// configuration errors stop it at once; with no configuration it serves over a real socket;
// SIGTERM closes it cleanly.
import { existsSync } from 'node:fs'
import { connect, createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { test } from 'tap'
import { Redis } from 'ioredis'
import { freePort, killRedis, spawnRedisOnFreePort, startRedis, startSim } from './helper.js'
import { parseMetrics, valueOf } from './prometheus.js'
import { entry, run } from './standalone.js'

const simulatorEntry = fileURLToPath(new URL('../dist/simulator/cli.js', import.meta.url))
// How long a process may take to say it listens: seconds on a loaded machine, so generous; waited
// for by polling, so a quick start costs nothing.
const BOOT_MS = 30_000

test('the standalone server', { skip: existsSync(entry) ? false : 'run `npm run build` first (npm test does)' }, async (t) => {
  t.test('a bad variable stops it before it listens, naming the variable', async (t) => {
    const p = run({ PORT: 'eighty' })
    t.equal(await p.exited, 1)
    t.match(p.output(), /Invalid configuration: .*PORT/)
  })

  t.test('values the schema takes but Node or proxy-addr would refuse or misread: one line each, no stack', async (t) => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ TRUST_PROXY: 'TRUE' }, 'TRUST_PROXY must be'],
      [{ TRUST_PROXY: '10.0.0.0/33' }, 'TRUST_PROXY must be'],
      [{ HTTP_REQUEST_TIMEOUT_MS: '5000' }, 'HTTP_HEADERS_TIMEOUT_MS must not exceed HTTP_REQUEST_TIMEOUT_MS'],
      [{ PORT: ' ' }, 'PORT must be a whole number in decimal digits'],
      [{ REQUEST_ID_HEADER: 'cookie' }, 'REQUEST_ID_HEADER cannot be cookie']
    ]
    await Promise.all(cases.map(async ([env, message]) => {
      const p = run({ ...env, LOG_LEVEL: 'silent' })
      t.equal(await p.exited, 1, JSON.stringify(env))
      t.equal(p.output().trimEnd().split('\n').length, 1, `${message}: one line`)
      t.ok(p.output().startsWith(`fastify-wechat-auth: Invalid configuration: ${message}`), p.output())
    }))
  })

  t.test('a start that fails says why, on stderr, even with LOG_LEVEL=silent', async (t) => {
    const taken = createServer().listen(0, '127.0.0.1')
    await new Promise((resolve) => taken.once('listening', resolve))
    t.teardown(() => { taken.close() })
    const p = run({ PORT: String((taken.address() as AddressInfo).port), LOG_LEVEL: 'silent' })
    t.equal(await p.exited, 1)
    t.match(p.errors(), /^fastify-wechat-auth: the gateway cannot start: .*EADDRINUSE/)
  })

  t.test('a Redis that refuses the login (REDIS_URL without its password) is told with its reason, even with LOG_LEVEL=silent', async (t) => {
    const { port, proc } = await spawnRedisOnFreePort(() => [])
    t.teardown(async () => { await killRedis(proc) })
    const admin = new Redis(port, '127.0.0.1')
    await admin.config('SET', 'requirepass', 'the-redis-pass')
    admin.disconnect()
    const p = run({ PORT: String(await freePort()), LOG_LEVEL: 'silent', REDIS_URL: `redis://127.0.0.1:${port}`, ACCESS_CHECK: 'strict' })
    t.equal(await p.exited, 1)
    t.match(p.errors(), /^fastify-wechat-auth: the gateway cannot start: .*NOAUTH/, 'the reason, from the error\'s cause')
    t.notMatch(p.errors(), /the-redis-pass/)
  })

  t.test('a Redis that does not answer at boot, with a long STORE_TIMEOUT_MS, is told as the store\'s deadline, not as Fastify\'s plugin timeout', async (t) => {
    const redis = await startRedis(t, { own: true })
    redis.pause()
    t.teardown(() => { redis.resume() })
    const p = run({ PORT: String(await freePort()), LOG_LEVEL: 'silent', REDIS_URL: redis.url, STORE_TIMEOUT_MS: '3500' })
    t.equal(await p.exited, 1)
    t.match(p.errors(), /^fastify-wechat-auth: the gateway cannot start: REDIS_URL: /, 'the setting named')
    t.notMatch(p.errors(), /Plugin did not start in time/)
  })

  t.test('production without credentials refuses to start', async (t) => {
    const p = run({ NODE_ENV: 'production', PORT: String(await freePort()) })
    t.equal(await p.exited, 1)
    t.match(p.output(), /NODE_ENV=production requires WECHAT_APPID and WECHAT_SECRET \(or WECHAT_APPS\), REDIS_URL, JWT_SECRET/)
  })

  t.test('with no configuration it serves a login over a real socket, and stops on SIGTERM', async (t) => {
    const port = await freePort()
    const p = run({ PORT: String(port), LOG_LEVEL: 'info' })
    t.teardown(p.kill)
    await p.until((o) => o.includes('Server listening'), 'the server to listen', BOOT_MS)
    t.match(p.output(), /DEVELOPMENT MODE/)
    const res = await request(`http://127.0.0.1:${port}/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'alice' })
    })
    t.equal(res.statusCode, 200)
    t.match(await res.body.json(), { tokenType: 'Bearer', accessToken: String, refreshToken: String })
    const nowhere = await request(`http://127.0.0.1:${port}/nowhere`)
    t.equal(nowhere.statusCode, 404)
    t.match(await nowhere.body.json(), { code: 'ROUTE_NOT_FOUND' }, 'the standalone server answers unknown routes with a code too')
    p.kill()
    t.equal(await p.exited, 0, 'clean exit on SIGTERM')
    // Warnings aside (development mode, the simulator), a start is one line and a stop one line.
    const lines = p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number, msg: string, reqId?: string })
    // Lines of a request (they carry its reqId) and audit events are not the server's own.
    const info = lines.filter((l) => l.level === 30 && l.reqId === undefined && l.msg !== 'audit').map((l) => l.msg)
    t.match(info, [/^Server listening at http:\/\/127\.0\.0\.1:\d+$/, /^shutting down: draining requests in flight$/], 'start: one line; stop: one line')
  })
})

test('the admin API listens on loopback, on a port of its own, behind ADMIN_TOKEN', { skip: existsSync(entry) ? false : 'run `npm run build` first (npm test does)' }, async (t) => {
  const token = 'admin-token-0123456789-abcdefghijklmnop'

  t.test('ADMIN_PORT without ADMIN_TOKEN refuses to start', async (t) => {
    const p = run({ PORT: String(await freePort()), ADMIN_PORT: String(await freePort()) })
    t.equal(await p.exited, 1)
    t.match(p.errors(), /^fastify-wechat-auth: Invalid configuration: ADMIN_PORT needs an ADMIN_TOKEN/, 'one line on stderr')
  })

  t.test('with ADMIN_PORT and ADMIN_TOKEN it answers operators there, and nowhere else', async (t) => {
    const [port, adminPort] = [await freePort(), await freePort()]
    const p = run({ PORT: String(port), ADMIN_PORT: String(adminPort), ADMIN_TOKEN: token, LOG_LEVEL: 'info' })
    t.teardown(p.kill)
    await p.until((o) => o.includes('admin API listening'), 'the admin API to listen', BOOT_MS)
    t.match(p.output(), `admin API listening at http://127.0.0.1:${adminPort}/admin`, 'the boot log says where')
    const appid = /"appid":"(wx[0-9a-f]{16})"/.exec(p.output())?.[1] as string
    const login = await request(`http://127.0.0.1:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'alice' }) })
    const { openid, accessToken } = await login.body.json() as { openid: string, accessToken: string }
    const user = `/admin/apps/${appid}/users/${openid}`
    const state = await request(`http://127.0.0.1:${adminPort}${user}`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(state.statusCode, 200)
    t.match(await state.body.json(), { appid, sub: openid, sessions: [{ deviceType: 'mp', ip: '127.0.0.1' }] })
    const anonymous = await request(`http://127.0.0.1:${adminPort}${user}`)
    t.equal(anonymous.statusCode, 401)
    t.equal(anonymous.headers['www-authenticate'], 'Bearer realm="wechat-auth-admin"')
    t.match(await anonymous.body.json(), { code: 'ADMIN_TOKEN_INVALID' })
    const kick = await request(`http://127.0.0.1:${adminPort}${user}/kick`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'ops' })
    })
    t.same(await kick.body.json(), { ended: 1 })
    const me = await request(`http://127.0.0.1:${port}/auth/me`, { headers: { authorization: `Bearer ${accessToken}` } })
    t.match(await me.body.json(), { code: 'AUTH_SESSION_KICKED', detail: { reason: 'ops' } }, 'the gateway sees the kick at once')
    const onGateway = await request(`http://127.0.0.1:${port}${user}`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(onGateway.statusCode, 404)
    t.match(await onGateway.body.json(), { code: 'ROUTE_NOT_FOUND' }, 'the gateway\'s port has no admin routes')
    const elsewhere = await request(`http://127.0.0.1:${adminPort}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"code":"bob"}' })
    t.match(await elsewhere.body.json(), { code: 'ROUTE_NOT_FOUND' }, 'the admin port has no gateway routes')
    p.kill()
    t.equal(await p.exited, 0, 'both listeners close on SIGTERM')
    t.notMatch(p.output(), token, 'the token is never logged')
  })

  t.test('ADMIN_HOST beyond loopback is a deliberate choice, warned about at boot', async (t) => {
    const adminPort = await freePort()
    const p = run({ PORT: String(await freePort()), ADMIN_PORT: String(adminPort), ADMIN_HOST: '0.0.0.0', ADMIN_TOKEN: token })
    t.teardown(p.kill)
    await p.until((o) => o.includes('beyond loopback') && o.includes('admin API listening'), 'the warning and the listener', BOOT_MS)
    t.match(p.output(), /"level":40,.*the admin API listens beyond loopback/)
    t.equal((await request(`http://127.0.0.1:${adminPort}/admin/openapi.json`)).statusCode, 401, 'still behind the token')
    p.kill()
    t.equal(await p.exited, 0)
  })
})

test('METRICS_PORT: Prometheus metrics on a listener of their own, not on the gateway\'s port', { skip: existsSync(entry) ? false : 'run `npm run build` first (npm test does)' }, async (t) => {
  const port = await freePort()
  const same = run({ PORT: String(port), METRICS_PORT: String(port) })
  t.equal(await same.exited, 1)
  t.match(same.errors(), /^fastify-wechat-auth: Invalid configuration: METRICS_PORT must differ from PORT/, 'one line on stderr')
  const simulators = run({ PORT: String(port), METRICS_PORT: String(port + 1) })
  t.equal(await simulators.exited, 1)
  t.match(simulators.errors(), /METRICS_PORT is the port the built-in WeChat simulator takes/, 'nor the development simulator\'s')

  const metricsPort = await freePort()
  const p = run({ PORT: String(port), METRICS_PORT: String(metricsPort), LOG_LEVEL: 'info' })
  t.teardown(p.kill)
  await p.until((o) => o.includes('metrics listening'), 'the metrics listener', BOOT_MS)
  t.match(p.output(), `metrics listening at http://127.0.0.1:${metricsPort}/metrics`, 'the boot log says where')
  const login = await request(`http://127.0.0.1:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'mona.1' }) })
  t.equal(login.statusCode, 200)
  await login.body.dump()
  const res = await request(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const samples = parseMetrics(await res.body.text())
  t.equal(valueOf(samples, 'wechat_auth_http_request_duration_seconds_count', { method: 'POST', route: '/auth/login', status_code: '200' }), 1)
  t.ok(samples.some((x) => x.name === 'process_cpu_seconds_total'), 'the process\'s default metrics')
  const onGateway = await request(`http://127.0.0.1:${port}/metrics`)
  t.equal(onGateway.statusCode, 404, 'the gateway\'s port does not answer metrics')
  await onGateway.body.dump()
  p.kill()
  t.equal(await p.exited, 0, 'both listeners close on SIGTERM')
})

test('the admin and metrics listeners\' errors are counted with the gateway\'s, their answers before Fastify too', { skip: existsSync(entry) ? false : 'run `npm run build` first (npm test does)' }, async (t) => {
  const [port, adminPort, metricsPort] = [await freePort(), await freePort(), await freePort()]
  const p = run({ PORT: String(port), ADMIN_PORT: String(adminPort), ADMIN_TOKEN: 'admin-token-0123456789-abcdefghijklmnop', METRICS_PORT: String(metricsPort), LOG_LEVEL: 'info' })
  t.teardown(p.kill)
  await p.until((o) => o.includes('admin API listening') && o.includes('metrics listening'), 'both listeners', BOOT_MS)
  const anonymous = await request(`http://127.0.0.1:${adminPort}/admin/openapi.json`, { headers: { authorization: 'Bearer wrong-token-0123456789-abcdefghijklmnopq' } })
  t.match(await anonymous.body.json(), { code: 'ADMIN_TOKEN_INVALID' })
  t.match(await raw(adminPort, 'GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400 .*"code":"HTTP_BAD_REQUEST"/s, 'garbage on the admin port')
  t.match(await raw(metricsPort, 'GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 .*"code":"HTTP_BAD_REQUEST"/s, 'no Host on the metrics port')
  const missing = await request(`http://127.0.0.1:${metricsPort}/nothing`)
  t.match(await missing.body.json(), { code: 'ROUTE_NOT_FOUND' })
  const samples = parseMetrics(await (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body.text())
  const count = (labels: Record<string, string>): number => valueOf(samples, 'wechat_auth_errors_total', labels)
  t.equal(count({ code: 'ADMIN_TOKEN_INVALID' }), 1, 'a wrong admin token')
  t.equal(count({ code: 'HTTP_BAD_REQUEST' }), 2, 'one refusal on each listener')
  t.equal(count({ code: 'ROUTE_NOT_FOUND' }), 1, 'the metrics listener\'s own 404')
  t.notMatch(JSON.stringify(samples), 'admin-token-0123456789', 'the admin token is no label')
  p.kill()
  t.equal(await p.exited, 0)
})

/** Sends `text` on a raw socket and resolves with all that came back once the server closed. */
async function raw (port: number, text: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  socket.end(text)
  let answer = ''
  socket.on('data', (d: Buffer) => { answer += d.toString() })
  await new Promise((resolve) => socket.once('close', resolve))
  return answer
}

test('the simulator runs on its own (npm run simulator)', { skip: existsSync(simulatorEntry) ? false : 'run `npm run build` first' }, async (t) => {
  const port = await freePort()
  const p = run({ PORT: String(port), WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'bench-secret-0123456789' }, simulatorEntry)
  t.teardown(p.kill)
  await p.until((o) => o.includes('listening'), 'a listener', BOOT_MS)
  const q = new URLSearchParams({ appid: 'wx0123456789abcdef', secret: 'bench-secret-0123456789', js_code: 'alice', grant_type: 'authorization_code' })
  const res = await request(`http://127.0.0.1:${port}/sns/jscode2session?${q.toString()}`)
  t.match(await res.body.json(), { openid: String, session_key: String })
  p.kill()
  t.equal(await p.exited, 0)
})

test('WORKERS=2: two processes serve one port, a killed worker is replaced, SIGTERM drains all', { skip: existsSync(entry) ? false : 'run `npm run build` first (npm test does)' }, async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const port = await freePort()
  const env = {
    PORT: String(port),
    LOG_LEVEL: 'info',
    WORKERS: '2',
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: redis.prefix,
    JWT_SECRET: 'workers-test-secret-0123456789-abcdefghij',
    WECHAT_APPID: sim.appid,
    WECHAT_SECRET: sim.secret,
    WECHAT_API_BASE: sim.url,
    METRICS_PORT: String(await freePort())
  }
  const refused = run({ ...env, REDIS_URL: '', WECHAT_APPID: '', WECHAT_SECRET: '' })
  t.equal(await refused.exited, 1)
  t.match(refused.output(), /WORKERS=2 needs REDIS_URL, WECHAT_APPID and WECHAT_SECRET \(or a simulator of its own/)
  const p = run(env)
  t.teardown(p.kill)
  const listening = (): number => p.output().split('\n').filter((l) => l.includes('Server listening')).length
  await p.until(() => listening() >= 2, 'two workers to listen', BOOT_MS)
  t.equal(listening(), 2, 'two workers listen')
  const login = await request(`http://127.0.0.1:${port}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'walt.1' }) })
  const { accessToken } = await login.body.json() as { accessToken: string }
  // New connections: the primary hands each to a worker in turn.
  const me = async (): Promise<number | string> => await request(`http://127.0.0.1:${port}/auth/me`, { headers: { authorization: `Bearer ${accessToken}`, connection: 'close' }, reset: true })
    .then(async (r) => r.statusCode === 200 ? 200 : `${r.statusCode} ${await r.body.text()}`, (err: Error) => err.message)
  const answers = await Promise.all(Array.from({ length: 20 }, me))
  t.same([...new Set(answers)], [200], 'a token from one worker works on the other')
  // A request's line is written once it is answered (http/request-log.ts), so it may reach the pipe after its answer.
  const servedBy = (): number[] => [...new Set(p.output().split('\n').filter((l) => l.includes('request completed')).map((l) => (JSON.parse(l) as { pid: number }).pid))]
  await p.until(() => servedBy().length >= 2, 'both workers\' request lines', BOOT_MS)
  const pids = servedBy()
  t.equal(pids.length, 2, 'both workers served requests')
  const scraped = await request(`http://127.0.0.1:${env.METRICS_PORT}/metrics`)
  const samples = parseMetrics(await scraped.body.text())
  t.equal(valueOf(samples, 'wechat_auth_http_request_duration_seconds_count', { method: 'GET', route: '/auth/me', status_code: '200' }), 20, 'the primary sums what both workers counted')
  t.equal(valueOf(samples, 'wechat_auth_logins_total', { outcome: 'ok' }), 1)
  const workerLabels = new Set(samples.filter((x) => x.name === 'wechat_auth_http_request_duration_seconds_count').map((x) => x.labels.worker))
  t.same([...workerLabels].sort(), ['0', '1'], 'one series per worker slot: a restarted worker does not look like a counter reset')
  t.equal(valueOf(samples, 'wechat_auth_metrics_workers', { state: 'answered' }), 2)
  process.kill(pids[0] as number, 'SIGKILL')
  // Connections the primary handed to the worker as it died are lost with it; once the primary knows
  // (a moment later), every connection goes to the living worker.
  await p.until((o) => o.includes('a worker died'), 'the primary to see the death', BOOT_MS)
  const scrapeStarted = Date.now()
  const whileDown = await request(`http://127.0.0.1:${env.METRICS_PORT}/metrics`)
  t.equal(whileDown.statusCode, 200, 'a scrape while a worker is gone answers what the others have')
  await whileDown.body.dump()
  t.ok(Date.now() - scrapeStarted < 3000, 'without waiting long for the one that is gone')
  const during = await Promise.all(Array.from({ length: 10 }, me))
  t.same([...new Set(during)], [200], 'the other worker serves while one is gone')
  await p.until(() => listening() >= 3, 'a third worker to listen', BOOT_MS)
  t.equal(listening(), 3, 'a new worker replaced the killed one')
  t.match(p.output(), /"role":"primary".*"msg":"a worker died; starting another"/)
  p.kill()
  t.equal(await p.exited, 0, 'SIGTERM: every worker drains, the primary exits cleanly')
  t.match(p.output(), /every worker has stopped/)
})
