// deploy/: the Dockerfile, compose file and Kubernetes example cannot run here (no container engine),
// so what they say is checked against the code: the command and files exist in the package, the
// probes name the health routes, every variable they set is a configuration key; the Grafana
// dashboard queries only metrics, and labels, the gateway exports. The image's runtime stage is run
// without Docker: its RUN lines in a directory holding what it copies (the lockfile, dist/), then the
// server it starts, in production, against a real Redis.
import { execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { test } from 'tap'
import { parseAllDocuments } from 'yaml'
import { ConfigSchema } from '../lib/schemas.js'
import { APPID, buildApp, freePort, JWT_SECRET, SECRET, startRedis, startSim } from './helper.js'
import { unbuilt } from './standalone.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')
const KEYS = new Set(Object.keys(ConfigSchema.properties))
const pkg = JSON.parse(read('package.json')) as {
  files: string[], bin: Record<string, string>, engines: { node: string }, peerDependenciesMeta: Record<string, { optional?: boolean }>
}

test('the Dockerfile runs the packaged server as a non-root user, checks liveness, and sets only configuration keys', async (t) => {
  const docker = read('deploy/Dockerfile')
  t.match(docker, /^CMD \["node", "dist\/server\.js"\]$/m, 'the command')
  t.equal(pkg.bin['fastify-wechat-auth'], 'dist/server.js', 'the same file the bin runs')
  t.ok(pkg.files.includes('dist'), 'shipped in the package')
  t.match(docker, /^USER node$/m, 'not root')
  t.match(docker, /HEALTHCHECK[\s\S]*\/health\/live/, 'health check on liveness')
  t.match(docker, /^FROM node:20/m, `the Node major the engines field allows (${pkg.engines.node})`)
  for (const [, key] of docker.matchAll(/^ENV ([\s\S]+?)$/gm)) {
    for (const pair of (key as string).split(/\s+/)) t.ok(KEYS.has(pair.split('=')[0] as string), `ENV ${pair}: a configuration key`)
  }
})

test('the compose file and the Kubernetes example: health routes and configuration keys only', async (t) => {
  const compose = parseAllDocuments(read('deploy/compose.yaml'))[0]?.toJS() as { services: Record<string, { environment?: Record<string, string> }> }
  for (const key of Object.keys(compose.services.gateway?.environment ?? {})) t.ok(KEYS.has(key), `compose: ${key} is a configuration key`)
  const docs = parseAllDocuments(read('deploy/kubernetes.yaml')).map((d) => d.toJS() as Record<string, any>)
  t.same(docs.map((d) => d.kind), ['Secret', 'Deployment', 'Service'])
  for (const key of Object.keys(docs[0]?.stringData ?? {})) t.ok(KEYS.has(key), `Secret: ${key} is a configuration key`)
  const container = docs[1]?.spec.template.spec.containers[0]
  t.equal(container.readinessProbe.httpGet.path, '/health', 'readiness: the store answers')
  t.equal(container.livenessProbe.httpGet.path, '/health/live', 'liveness: the process serves')
  for (const { name } of container.env) t.ok(KEYS.has(name), `env: ${String(name)} is a configuration key`)
  const metricsPort = container.env.find((e: { name: string }) => e.name === 'METRICS_PORT')?.value
  t.ok(container.ports.some((p: { containerPort: number, name: string }) => p.name === 'metrics' && String(p.containerPort) === metricsPort), 'the metrics port is the one METRICS_PORT sets')
  t.equal(docs[1]?.spec.template.metadata.annotations['prometheus.io/port'], metricsPort, 'and the one the scrape annotation names')
  const [sleepCommand, seconds] = container.lifecycle.preStop.exec.command as [string, string]
  t.equal(sleepCommand, 'sleep', 'preStop: serve a few seconds more while endpoints are removed')
  t.ok(docs[1]?.spec.template.spec.terminationGracePeriodSeconds > Number(seconds) + 10, 'longer than the preStop sleep and the drain (10 s)')
})

// A .dockerignore or .gitignore pattern as a regular expression over a path relative to its root.
const patternOf = (line: string): RegExp => new RegExp(`^${line.replace(/^\//, '').split('**/').map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*')).join('(?:.*/)?')}(?:/.*)?$`)
const ignores = (file: string, path: string): boolean =>
  file.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!')).some((l) => patternOf(l).test(path))

test('the image\'s build context leaves out node_modules, dist, .git and deploy/.env; git ignores deploy/.env', async (t) => {
  const compose = parseAllDocuments(read('deploy/compose.yaml'))[0]?.toJS() as { services: { gateway: { build: { context: string, dockerfile: string } } } }
  const context = resolve(ROOT, 'deploy', compose.services.gateway.build.context)
  t.equal(context, resolve(ROOT), 'compose builds from the repository root, as the Dockerfile says')
  t.match(read('deploy/Dockerfile'), /docker build -f deploy\/Dockerfile .* \.$/m)
  const dockerignore = readFileSync(join(context, '.dockerignore'), 'utf8')
  for (const path of ['node_modules', 'node_modules/esbuild/bin/esbuild', 'dist', 'dist/server.js', '.git', 'deploy/.env']) t.ok(ignores(dockerignore, path), `.dockerignore: ${path} is left out`)
  for (const path of ['package.json', 'package-lock.json', 'server.ts', 'lib/config.ts', 'client/expand-codes.mjs', 'tsconfig.build.json', 'deploy/Dockerfile']) t.notOk(ignores(dockerignore, path), `.dockerignore: ${path} is kept (the build needs it)`)
  t.ok(ignores(read('.gitignore'), 'deploy/.env'), '.gitignore: deploy/.env (compose.yaml: never commit it)')
})

interface Run { code: number | null, stdout: string, stderr: string }
const run = async (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> =>
  await new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null, stdout, stderr })
    })
  })

/** The bare imports of `entry` and of every module it imports, statically (`from`) or dynamically (`import('…')`). */
function bareImports (entry: string): Map<string, 'static' | 'dynamic'> {
  const found = new Map<string, 'static' | 'dynamic'>()
  const seen = new Set<string>()
  const visit = (file: string): void => {
    if (seen.has(file)) return
    seen.add(file)
    const source = readFileSync(file, 'utf8')
    const specifiers = [...source.matchAll(/\b(?:from|import)\s*(\(\s*)?['"]([^'"]+)['"]/g)].map((m) => ({ dynamic: m[1] !== undefined, specifier: m[2] as string }))
    for (const { dynamic, specifier } of specifiers) {
      if (specifier.startsWith('.')) visit(join(dirname(file), specifier))
      else if (!isBuiltin(specifier)) {
        const name = specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/')
        if (found.get(name) !== 'static') found.set(name, dynamic ? 'dynamic' : 'static')
      }
    }
  }
  visit(entry)
  return found
}

test('the image\'s runtime stage, run without Docker: it installs every package dist/server.js loads, and the server it starts boots in production', { skip: unbuilt(), timeout: 110_000 }, async (t) => {
  const docker = read('deploy/Dockerfile')
  // The last stage, its continued lines joined as Docker joins them.
  const stage = docker.slice(docker.lastIndexOf('\nFROM ')).replace(/\\\n/g, ' ').split('\n').filter((l) => !l.startsWith('#'))
  t.same(stage.filter((l) => l.startsWith('COPY ')), ['COPY package.json package-lock.json ./', 'COPY --from=build /app/dist ./dist'], 'what it copies (the build stage\'s dist/ is this repository\'s)')
  const stageEnv = Object.fromEntries(stage.filter((l) => l.startsWith('ENV ')).flatMap((l) => l.slice(4).trim().split(/\s+/)).map((pair) => pair.split('=') as [string, string]))
  const dir = await mkdtemp(join(tmpdir(), 'wxauth-image-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  for (const file of ['package.json', 'package-lock.json']) await cp(join(ROOT, file), join(dir, file))
  // The host's environment (its registry, proxy), not the test runner's loader; a cache of its own,
  // which the stage cleans; npm's default retries would wait out a dead registry for minutes.
  const { NODE_OPTIONS: _loader, ...inherited } = process.env
  const env = { ...inherited, ...stageEnv, npm_config_cache: join(dir, '.npm-cache'), npm_config_fetch_retries: '1', npm_config_fetch_timeout: '30000' }
  for (const command of stage.filter((l) => l.startsWith('RUN ')).map((l) => l.slice(4).trim())) {
    const done = await run('sh', ['-c', command], dir, env)
    t.equal(done.code, 0, `RUN ${command.slice(0, 40)}…`, { stderr: done.stderr.trim().split('\n').slice(-10).join('\n') })
  }
  await cp(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true })

  const missing = [...bareImports(join(dir, 'dist/server.js'))]
    .filter(([name, how]) => !existsSync(join(dir, 'node_modules', name, 'package.json')) && !(how === 'dynamic' && pkg.peerDependenciesMeta[name]?.optional === true))
  t.same(missing, [], 'every package imported is installed (an optional peer, imported on demand, may be missing)')

  const redis = await startRedis(t)
  const port = String(await freePort())
  const serverEnv = { PATH: process.env.PATH ?? '', ...stageEnv, HOST: '127.0.0.1', PORT: port, WECHAT_APPID: APPID, WECHAT_SECRET: SECRET, JWT_SECRET, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix }
  const server = spawn(process.execPath, ['dist/server.js'], { cwd: dir, env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  server.stdout.on('data', (d: Buffer) => { output += d.toString() })
  server.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<number | null>((resolve) => server.once('exit', resolve))
  t.teardown(() => { server.kill('SIGKILL') })
  let ready = 0
  for (let i = 0; i < 200 && ready !== 200 && server.exitCode === null; i++) {
    ready = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 0)
    if (ready !== 200) await sleep(50)
  }
  t.equal(ready, 200, 'ready: it serves and writes to Redis', { output: output.slice(-2000) })
  const check = /^HEALTHCHECK .*?CMD (.+)$/m.exec(docker.replace(/\\\n/g, ' '))?.[1] as string
  t.equal((await run('sh', ['-c', check], dir, serverEnv)).code, 0, 'the image\'s HEALTHCHECK passes')
  server.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM drains and exits 0')
})

test('the Grafana dashboard charts only metrics the gateway exports, each query by its labels', async (t) => {
  const dashboard = JSON.parse(read('deploy/grafana-dashboard.json')) as { uid: string, panels: Array<{ title: string, targets: Array<{ expr: string }> }> }
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, metrics: true })
  const { registry } = app.wechatAuthMetrics
  const labelsOf = (name: string): string[] => (registry.getSingleMetric(name) as unknown as { labelNames: string[] }).labelNames
  const exported = new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, new Set([...labelsOf(m.name), ...(String(m.type) === 'histogram' ? ['le'] : [])])]))
  t.ok(dashboard.panels.length >= 12)
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets) {
      const names = [...expr.matchAll(/\b((?:wechat_auth|nodejs|process)_[a-z0-9_]+)/g)].map((m) => m[1] as string)
      t.ok(names.length > 0, `${panel.title}: queries a metric`)
      for (const name of names) {
        const base = name.replace(/_(bucket|count|sum)$/, '')
        const labels = exported.get(name) ?? exported.get(base)
        t.ok(labels, `${panel.title}: ${name} is exported`)
        // Labels grouped by or matched on: each one the metric has (job and instance come from the scraper).
        const used = [...expr.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => (m[1] as string).split(',').map((s) => s.trim()))
          .concat([...expr.matchAll(/([a-z_]+)(?:=~|!=|=)"/g)].map((m) => m[1] as string))
          .filter((l) => l !== 'job' && l !== 'instance')
        for (const label of used) t.ok(labels?.has(label), `${panel.title}: ${name} has the label ${label}`)
      }
    }
  }
})
