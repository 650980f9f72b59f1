// The Go peer (bench/peers/go/): built in GOPATH mode against Debian's Go packages, then started
// against the run's Redis and WeChat simulator. No Go toolchain or a package missing is not an error:
// the caller says so and measures nothing.
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { paths } from '../paths.js'
import { APPID, SECRET, freePort, start, waitFor, type Proc, type Stack } from '../processes.js'

/** Where Debian installs Go sources (golang-*-dev packages). */
const GOCODE = '/usr/share/gocode'
/** The Debian packages the peer is built from, by what the report calls them. */
const PACKAGES = {
  gin: 'golang-github-gin-gonic-gin-dev',
  'golang-jwt': 'golang-github-golang-jwt-jwt-dev',
  redigo: 'golang-github-gomodule-redigo-dev'
}
const INSTALL = `apt-get install -y golang-go ${Object.values(PACKAGES).join(' ')}`

export interface GoPeerBuild {
  binary: string
  /** go, gin, golang-jwt and redigo: the toolchain's version and the Debian packages'. */
  versions: Record<string, string>
}

const run = (command: string, args: string[], env: Record<string, string> = {}, cwd?: string): { ok: boolean, out: string } => {
  const r = spawnSync(command, args, { env: { ...process.env, ...env }, encoding: 'utf8', cwd })
  return { ok: r.error === undefined && r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() }
}

function packageVersion (name: string): string {
  // dpkg-query's format names a field as ${Version}: written with '$' apart, as it is not a template.
  const r = run('dpkg-query', ['-W', '-f=$' + '{Version}', name])
  return r.ok && r.out !== '' ? r.out : 'unknown (not a Debian package)'
}

/**
 * Builds the peer into .bench/go/; or, without a Go toolchain or one of its packages, says why not
 * (`skipped`). A source that does not compile throws: that is the peer's bug, not the machine's.
 */
export function buildGoPeer (): GoPeerBuild | { skipped: string } {
  const version = run('go', ['version'])
  if (!version.ok) return { skipped: `no Go toolchain (go is not on the PATH): ${INSTALL}` }
  const binary = join(paths.goPeerBuild, 'go-peer')
  const gopath = join(paths.goPeerBuild, 'gopath')
  mkdirSync(gopath, { recursive: true })
  const env = {
    GO111MODULE: 'off',
    GOPATH: [process.env.GOPATH, GOCODE, gopath].filter((p) => p !== undefined && p !== '').join(':'),
    GOCACHE: join(paths.goPeerBuild, 'cache'),
    GOFLAGS: ''
  }
  process.stderr.write(`building the Go peer (${version.out}, GOPATH=${env.GOPATH})\n`)
  const build = run('go', ['build', '-o', binary, '.'], env, paths.goPeerSource)
  if (!build.ok && build.out.includes('cannot find package')) {
    const missing = [...build.out.matchAll(/cannot find package "([^"]+)"/g)].map((m) => m[1]).join(', ')
    return { skipped: `Go packages missing (${missing}): ${INSTALL}` }
  }
  if (!build.ok) throw new Error(`the Go peer does not build:\n${build.out}`)
  const versions: Record<string, string> = { go: version.out.split(' ')[2] ?? version.out }
  for (const [what, name] of Object.entries(PACKAGES)) versions[what] = packageVersion(name)
  return { binary, versions }
}

export interface GoPeer {
  base: string
  proc: Proc
  /** What it says of itself when it starts: gin's version, GOMAXPROCS, its Redis connections. */
  about: string
}

/** Starts the peer against the stack's Redis and simulator, with `gomaxprocs` threads running Go. */
export async function startGoPeer (build: GoPeerBuild, stack: Stack, gomaxprocs: number): Promise<GoPeer> {
  const port = await freePort()
  const proc = start('Go peer', build.binary, [], {
    PORT: String(port),
    REDIS_URL: stack.redisUrl,
    WECHAT_API_BASE: stack.simulatorUrl,
    WECHAT_APPID: APPID,
    WECHAT_SECRET: SECRET,
    JWT_SECRET: randomBytes(32).toString('base64url'),
    GOMAXPROCS: String(gomaxprocs)
  })
  const base = `http://127.0.0.1:${port}`
  await waitFor(`${base}/health/live`, proc)
  const about = /go peer \((.*)\) on/.exec(proc.output())?.[1] ?? 'unknown'
  return { base, proc, about }
}
