// The package as users get it (issue 12): `npm pack` of the built repo, installed from the npm
// registry into a strict TypeScript host (test/fixtures/host) that has its own @fastify/redis,
// @fastify/jwt and global @fastify/rate-limit. The shipped .d.ts files are checked with
// skipLibCheck false, then the compiled host runs over real HTTP, real Redis and the simulator.
// A plain host, which imports only fastify and the package, is checked under Node16 and Bundler
// module resolution with the oldest TypeScript docs/embedding.md promises.
import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t, { test } from 'tap'
import { JWT_SECRET, redisClient, startRedis, startSim } from './helper.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const FIXTURE = fileURLToPath(new URL('fixtures/host', import.meta.url))
// What a host installs next to the tarball, and the oldest TypeScript the docs promise (the
// fixture's checks run with this repo's own, which wrote the .d.ts files). ioredis' own .d.ts
// imports redis-errors, whose types ioredis lists only as a dev dependency: without them a
// skipLibCheck-false host fails (TS7016).
const HOST_DEPENDENCIES = ['fastify@5', '@fastify/redis@9', '@fastify/jwt@10', '@fastify/rate-limit@11', 'ioredis@6',
  '@types/redis-errors@1', '@types/node@20']
const PROJECT_TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const INSTALL_TIMEOUT_MS = 180_000
const NPM_INSTALL = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts',
  // npm's default retries wait out a dead registry for minutes
  '--fetch-timeout=30000', '--fetch-retries=1', '--fetch-retry-mintimeout=2000', '--fetch-retry-maxtimeout=10000']

// A host with nothing of its own that augments Fastify's types (as @fastify/jwt augments
// FastifyReply): a .d.ts that names a type it does not import fails here, under each resolution.
const PLAIN_HOST = `import Fastify from 'fastify'
import wechatAuth, { AuthForbiddenError, wechatAuthErrorHandler, type AuthUser } from 'fastify-wechat-auth'

const app = Fastify()
await app.register(wechatAuth, { config: { AUTH_PREFIX: '/api/wx' } })
app.setErrorHandler(wechatAuthErrorHandler)
app.get('/admin', { onRequest: app.authorize({ roles: ['admin'] }) }, async (request) => {
  const user: AuthUser = request.wechatAuthUser
  return { sub: user.sub }
})
export const forbidden: { code: 'AUTH_FORBIDDEN', statusCode: 403 } = new AuthForbiddenError('roles')
await app.close()
`
// NodeNext resolves this package as Node16 does, and the fixture's tsconfig is NodeNext already.
const RESOLUTIONS = [
  { name: 'node16', module: 'Node16', moduleResolution: 'Node16' },
  { name: 'bundler', module: 'ESNext', moduleResolution: 'Bundler' }
]

// Installing from the registry and five tsc runs take longer than the 120 s the other files get.
t.setTimeout(300_000)

interface Run { code: number | null, stdout: string, stderr: string, timedOut: boolean }

async function run (cmd: string, args: string[], cwd: string, timeoutMs = 60_000, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const failure = err as (NodeJS.ErrnoException & { code?: number | string, killed?: boolean }) | null
      resolve({
        code: failure === null ? 0 : typeof failure.code === 'number' ? failure.code : null,
        stdout,
        stderr: failure !== null && typeof failure.code === 'string' ? `${failure.message}\n${stderr}` : stderr,
        timedOut: failure?.killed === true
      })
    })
  })
}

const tail = (text: string): string => text.trim().split('\n').slice(-15).join('\n')

/** The oldest TypeScript docs/embedding.md promises hosts, as `major.minor`. */
async function minimumTypeScript (): Promise<string> {
  const docs = await readFile(join(ROOT, 'docs/embedding.md'), 'utf8')
  const stated = /\*\*TypeScript (\d+\.\d+) or later\*\*/.exec(docs)?.[1]
  if (stated === undefined) throw new Error('docs/embedding.md states no "**TypeScript x.y or later**" for hosts')
  return stated
}

interface Installed { hostDir: string, tarball: string, typescript: string }

/** The tarball of the built repo, installed with the host's dependencies into a temp dir. */
async function installHost (tt: { teardown: (fn: () => unknown) => void }): Promise<Installed> {
  await stat(join(ROOT, 'dist/index.d.ts')).catch(() => {
    throw new Error('dist/ is missing: run `npm run build` first (`npm test` does)')
  })
  const typescript = await minimumTypeScript()
  const dir = await mkdtemp(join(tmpdir(), 'wxauth-host-'))
  tt.teardown(async () => await rm(dir, { recursive: true, force: true }))

  const pack = await run('npm', ['pack', '--json', '--pack-destination', dir], ROOT)
  if (pack.code !== 0) throw new Error(`npm pack failed:\n${tail(pack.stderr)}`)
  const [{ filename }] = JSON.parse(pack.stdout) as [{ filename: string }]

  const hostDir = join(dir, 'host')
  await cp(FIXTURE, hostDir, { recursive: true })
  const tarball = join(dir, filename)
  const install = await run('npm', [...NPM_INSTALL, tarball, ...HOST_DEPENDENCIES, `typescript@~${typescript}.0`], hostDir, INSTALL_TIMEOUT_MS)
  if (install.code !== 0) {
    const why = install.timedOut ? `did not finish in ${INSTALL_TIMEOUT_MS / 1000} s` : `exited with ${String(install.code)}`
    const registry = (await run('npm', ['config', 'get', 'registry'], hostDir)).stdout.trim()
    throw new Error(`npm install of the host ${why}; the npm registry ${registry} ${await registryState(registry)}\n${tail(install.stderr)}`)
  }
  return { hostDir, tarball, typescript }
}

/** Whether the registry answers at all, so that a failed install says whose fault it is. */
async function registryState (registry: string): Promise<string> {
  try {
    const res = await fetch(registry, { signal: AbortSignal.timeout(10_000) })
    return `answers (HTTP ${res.status})`
  } catch (err) {
    const { cause, message } = err as Error & { cause?: { code?: string, message?: string } }
    return `is unreachable (${cause?.code ?? cause?.message ?? message}): this test installs the host's dependencies from it`
  }
}

/** tsc on the host: this repo's (by default) or the host's own, which is the oldest the docs promise. */
const tsc = async (hostDir: string, args: string[], compiler = PROJECT_TSC): Promise<Run> =>
  await run(process.execPath, [compiler, '--pretty', 'false', ...args], hostDir)

/** The errors tsc printed: where (`file:line TSxxxx`) and the first line of each. */
const errorsOf = (out: string): Array<{ where: string, text: string }> =>
  [...out.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+).*$/gm)]
    .map(([text, file, line, code]) => ({ where: `${String(file)}:${String(line)} ${String(code)}`, text }))

/** One line per file and code, with the first error's text: one defect is often dozens of the same error. */
function byFileAndCode (errors: Array<{ where: string, text: string }>): string[] {
  const groups = new Map<string, { count: number, text: string }>()
  for (const { where, text } of errors) {
    const key = where.replace(/:\d+ /, ' ')
    const group = groups.get(key)
    if (group === undefined) groups.set(key, { count: 1, text })
    else group.count++
  }
  return [...groups].map(([key, { count, text }]) => `${key} ×${count}: ${text}`)
}

interface HostApp {
  listen: (opts: { port: number, host: string }) => Promise<string>
  close: () => Promise<void>
}
type BuildHost = (opts: Record<string, unknown>) => Promise<HostApp>

interface Answer { status: number, body: Record<string, unknown>, headers: Headers }

test('the packed package in a strict TypeScript host', { timeout: 280_000 }, async (t) => {
  const { hostDir, tarball, typescript } = await installHost(t)
  const tsconfig = JSON.parse(await readFile(join(hostDir, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> }
  t.match(tsconfig.compilerOptions, { strict: true, skipLibCheck: false, module: 'NodeNext', moduleResolution: 'NodeNext' }, 'the host is strict and checks every .d.ts')

  await t.test('tsc --noEmit is clean on the host, the shipped .d.ts files included', async (t) => {
    const check = await tsc(hostDir, ['--noEmit', '-p', 'tsconfig.json', '--listFiles'])
    t.same(errorsOf(check.stdout).map((error) => error.text), [], 'no type errors')
    t.equal(check.code, 0, 'tsc exits 0')
    const checked = (path: string): boolean => check.stdout.split('\n').some((file) => file.endsWith(`/node_modules/${path}`))
    t.ok(checked('fastify-wechat-auth/dist/index.d.ts'), 'the package\'s types come from the installed tarball')
    t.ok(checked('fastify-wechat-auth/dist/plugins/jwt.d.ts'), 'request.wechatAuthUser\'s declaration was checked')
    t.ok(checked('@fastify/jwt/types/index.d.ts'), 'next to the host\'s @fastify/jwt types')
  })

  await t.test('tsc fails on misuse of the shipped types, at each marked line and nowhere else', async (t) => {
    const source = await readFile(join(hostDir, 'misuse.ts'), 'utf8')
    const expected = source.split('\n').flatMap((line, i) => {
      const marker = /\/\/ expect (TS\d+)$/.exec(line)
      return marker === null ? [] : [`misuse.ts:${i + 1} ${String(marker[1])}`]
    })
    t.ok(expected.length >= 5, 'the fixture marks its mistakes')
    const check = await tsc(hostDir, ['--noEmit', '-p', 'tsconfig.misuse.json'])
    t.equal(check.code, 2, 'tsc exits with errors')
    t.same(errorsOf(check.stdout).map((error) => error.where), expected, 'errors at the marked lines only')
    t.match(check.stdout, /'RATE_LIMIT_LOGIN' does not exist in type 'ConfigInput'/, 'a misspelt config key')
    t.match(check.stdout, /Property 'nope' does not exist on type '\{ staffId: string; role: "admin" \| "clerk"; \}'/, 'request.user is the host\'s type')
  })

  await t.test(`a plain host compiles under ${RESOLUTIONS.map((r) => r.name).join(', ')} with TypeScript ${typescript}`, async (t) => {
    const hostTsc = join(hostDir, 'node_modules/typescript/bin/tsc')
    t.match((await tsc(hostDir, ['--version'], hostTsc)).stdout, `Version ${typescript}.`, 'the oldest TypeScript the docs promise')
    await writeFile(join(hostDir, 'plain.ts'), PLAIN_HOST)
    const checks = await Promise.all(RESOLUTIONS.map(async ({ name, module, moduleResolution }) => {
      const compilerOptions = { target: 'ES2022', module, moduleResolution, lib: ['ES2023'], types: ['node'], strict: true, skipLibCheck: false, noEmit: true }
      await writeFile(join(hostDir, `tsconfig.plain-${name}.json`), JSON.stringify({ compilerOptions, files: ['plain.ts'] }))
      return await tsc(hostDir, ['-p', `tsconfig.plain-${name}.json`, '--listFiles'], hostTsc)
    }))
    RESOLUTIONS.forEach(({ name }, i) => {
      const check = checks[i] as Run
      t.same(byFileAndCode(errorsOf(check.stdout)), [], `${name}: no type errors`)
      t.equal(check.code, 0, `${name}: tsc exits 0`)
      const checked = (path: string): boolean => check.stdout.split('\n').some((file) => file.endsWith(`/node_modules/${path}`))
      t.ok(checked('fastify-wechat-auth/dist/plugins/authorize.d.ts') && checked('fastify-wechat-auth/dist/lib/errors.d.ts'),
        `${name}: the tarball's declarations were checked`)
      t.notOk(checked('@fastify/jwt/types/index.d.ts'), `${name}: without the host's @fastify/jwt`)
    })
  })

  await t.test(`its own dependencies install with --engine-strict on Node ${process.versions.node}`, async (t) => {
    // The tarball alone, without peers: fastify's light-my-request is the host's (docs/embedding.md).
    // This proves `engines` on the Node running the suite, which should be the oldest that it names.
    const { engines } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
    const oldest = /\d+/.exec(engines.node)?.[0]
    if (oldest !== process.versions.node.split('.')[0]) t.comment(`engines.node is ${engines.node}: run this on Node ${String(oldest)} to prove it`)
    const dir = join(hostDir, '../engines')
    await mkdir(dir)
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'engines', private: true }))
    const install = await run('npm', [...NPM_INSTALL, '--dry-run', '--engine-strict', '--legacy-peer-deps', tarball], dir, INSTALL_TIMEOUT_MS)
    t.equal(install.code, 0, `npm install exits 0${install.code === 0 ? '' : `\n${tail(install.stderr)}`}`)
  })

  await t.test('the gateway runs by name: npx fastify-wechat-auth', async (t) => {
    // The installed command is the standalone server: a bad variable stops it at once, naming it.
    const bin = join(hostDir, 'node_modules/.bin/fastify-wechat-auth')
    const bad = await run(bin, [], hostDir, 30_000, { PATH: process.env.PATH, PORT: 'eighty' })
    t.equal(bad.code, 1, 'exits 1')
    t.match(bad.stderr, /^fastify-wechat-auth: Invalid configuration: .*PORT/, 'with the configuration message')
    const production = await run(bin, [], hostDir, 30_000, { PATH: process.env.PATH, NODE_ENV: 'production' })
    t.match(production.stderr, /NODE_ENV=production requires WECHAT_APPID/, 'reading only its environment')
  })

  await t.test('compiled, it logs in, guards the host\'s routes and counts each limit once in the host\'s Redis', async (t) => {
    // The types were checked above: here only the JavaScript, so a type error does not hide how it runs.
    const emit = await tsc(hostDir, ['-p', 'tsconfig.json', '--noEmit', 'false', '--noCheck'])
    t.equal(emit.code, 0, `compiles to build/ ${emit.stdout}`)
    const { buildHost } = await import(pathToFileURL(join(hostDir, 'build/host.js')).href) as { buildHost: BuildHost }

    const redis = await startRedis(t, { own: true })
    const sim = await startSim(t)
    const keys = redisClient(t, redis.url)
    const ns = 'host-rl:'
    const app = await buildHost({
      redisUrl: redis.url,
      staffJwtSecret: 'the-host-apps-own-staff-secret-0123456789',
      rateLimitNameSpace: ns,
      gateway: {
        NODE_ENV: 'production',
        WECHAT_APPID: sim.appid,
        WECHAT_SECRET: sim.secret,
        WECHAT_API_BASE: sim.url,
        JWT_SECRET,
        REDIS_KEY_PREFIX: redis.prefix,
        RATE_LIMIT_LOGIN_MAX: 3,
        RATE_LIMIT_REFRESH_MAX: 5,
        RATE_LIMIT_PHONE_MAX: 1
      }
    })
    t.teardown(async () => await app.close())
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    const call = async (method: string, path: string, opts: { token?: string, body?: unknown } = {}): Promise<Answer> => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {})
        },
        body: opts.body !== undefined ? JSON.stringify(opts.body) : null
      })
      return { status: res.status, body: await res.json() as Record<string, unknown>, headers: res.headers }
    }

    const login = await call('POST', '/auth/login', { body: { code: 'alice' } })
    t.equal(login.status, 200, 'login')
    t.match(login.body, { tokenType: 'Bearer', accessToken: String, refreshToken: String, openid: sim.openidOf('alice') })
    t.equal(login.headers.get('x-ratelimit-limit'), '3', 'counted against the gateway\'s login budget, not the host\'s 100')
    const accessToken = String(login.body.accessToken)
    const sub = `customer:${sim.openidOf('alice')}`

    const orders = await call('GET', '/api/orders', { token: accessToken })
    t.equal(orders.status, 200, 'the host route guarded by fastify.authenticate')
    t.same(orders.body, { sub, appid: sim.appid, tier: 'gold' }, 'request.wechatAuthUser: the sub resolveUser gave, and its claims')
    const anonymous = await call('GET', '/api/orders')
    t.equal(anonymous.status, 401)
    t.equal(anonymous.body.code, 'AUTH_TOKEN_MISSING')

    const staffToken = await call('POST', '/staff/token', { body: { staffId: 's-1' } })
    t.equal(staffToken.status, 200)
    const staffMe = await call('GET', '/staff/me', { token: String(staffToken.body.token) })
    t.equal(staffMe.status, 200, 'the host\'s own jwt and request.user')
    t.same(staffMe.body, { staffId: 's-1', role: 'clerk' })
    const crossed = [
      await call('GET', '/staff/me', { token: accessToken }),
      await call('GET', '/api/orders', { token: String(staffToken.body.token) })
    ]
    t.same(crossed.map((r) => [r.status, r.body.code]), [[401, 'FST_JWT_AUTHORIZATION_TOKEN_INVALID'], [401, 'AUTH_TOKEN_INVALID']],
      'neither accepts the other\'s tokens')

    const logins = [
      await call('POST', '/auth/login', { body: { code: 'alice.1' } }),
      await call('POST', '/auth/login', { body: { code: 'alice.2' } }),
      await call('POST', '/auth/login', { body: { code: 'alice.3' } })
    ]
    t.same(logins.map((r) => r.status), [200, 200, 429], 'the fourth login a minute is refused')
    t.equal(logins[2]?.body.code, 'RATE_LIMITED')
    const refreshed = await call('POST', '/auth/refresh', { body: { refreshToken: login.body.refreshToken } })
    t.equal(refreshed.status, 200, 'refresh')
    t.equal(refreshed.headers.get('x-ratelimit-limit'), '5', 'with the gateway\'s refresh budget')
    const phones = [
      await call('POST', '/auth/wechat/phone', { token: String(refreshed.body.accessToken), body: { code: 'alice' } }),
      await call('POST', '/auth/wechat/phone', { token: String(refreshed.body.accessToken), body: { code: 'alice.2' } })
    ]
    t.same(phones.map((r) => [r.status, r.body.code]), [[200, undefined], [429, 'RATE_LIMITED']], 'one phone lookup a minute per user')

    // What the host's limiter wrote: one key per budget, whose value is the number of requests
    // counted. Requests refused by an onRequest authentication hook (the three 401s above) never
    // reach the limiter's hook, which Fastify runs after them.
    const counters: Record<string, number> = {}
    for (const key of await keys.keys(`${ns}*`)) counters[key] = Number(await keys.get(key))
    t.same(counters, {
      [`${ns}POST/auth/login-127.0.0.1|${sim.appid}`]: 4,
      [`${ns}POST/auth/refresh-127.0.0.1`]: 1,
      [`${ns}POST/auth/wechat/phone-${sim.appid}|${sub}`]: 2,
      // the host's routes under its global budget: /api/orders, /staff/token, /staff/me once each
      [`${ns}127.0.0.1`]: 3
    }, 'each request counted once by the host\'s registration, in the host\'s Redis')
    const ttl = await keys.pttl(`${ns}POST/auth/login-127.0.0.1|${sim.appid}`)
    t.ok(ttl > 0 && ttl <= 60_000, 'in the gateway\'s one-minute window')

    const metrics = await (await fetch(`${base}/ops/metrics`)).text()
    t.match(metrics, /^wechat_auth_logins_total\{via="mp",outcome="ok"\} 3$/m, 'the gateway\'s metrics, where the host serves them')
    t.notMatch(metrics, /wechat_auth_http_request_duration_seconds_count|nodejs_/, 'without what the host counts itself')

    const gatewayKeys = await keys.keys(`${redis.prefix}*`)
    t.ok(gatewayKeys.length > 0, 'the gateway keeps its sessions in the host\'s Redis')
    t.same(gatewayKeys.filter((key) => key.startsWith(`${redis.prefix}rl:`)), [], 'and counts nothing itself')
    const others = (await keys.keys('*')).filter((key) => !key.startsWith(ns) && !key.startsWith(redis.prefix))
    t.same(others, [], 'no other key in Redis')
  })
})
