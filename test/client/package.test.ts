// fastify-wechat-auth/client as a mini-program project gets it: from the packed tarball, resolved
// through the package's exports, type-checked in a strict host with the ES2020 library, no
// @types/node and skipLibCheck false (a mistake in a code fails to compile), and its JavaScript loaded.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { test } from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)

// What the client's .d.ts files import, through lib/schemas.d.ts: installed with the package as its
// dependencies. Linked from this repo, so the test needs no registry.
const TYPE_DEPENDENCIES = ['@sinclair/typebox', '@fastify/error']

const MINI_PROGRAM = `import { createWechatAuthClient, WechatAuthError, type Platform, type ErrorCode, type PhoneResponse } from 'fastify-wechat-auth/client'
declare const wx: Platform
export const auth = createWechatAuthClient({ platform: wx, baseUrl: 'https://api.example.com', deviceType: 'mp' })
export async function orders (): Promise<unknown> {
  try {
    return (await auth.request<{ orders: unknown[] }>({ url: '/api/orders' })).data.orders
  } catch (err) {
    if (err instanceof WechatAuthError && err.code === 'AUTH_ACCOUNT_BANNED') return err.until
    throw err
  }
}
export const phone: Promise<PhoneResponse> = auth.phone('code')
export const codes: ErrorCode[] = ['WX_SESSION_KEY_STALE', 'CLIENT_LOGIN_LIMIT', 'HTTP_404', 'RATE_LIMITED']
auth.on('loggedOut', ({ reason }) => reason === 'AUTH_SESSION_REPLACED')
`
// Each line a mistake tsc must find.
const MISTAKES = `import { createWechatAuthClient, type ErrorCode, type Platform } from 'fastify-wechat-auth/client'
declare const wx: Platform
const auth = createWechatAuthClient({ platform: wx, baseUrl: 'https://api.example.com' })
export const typo: ErrorCode = 'AUTH_TOKEN_EXPIRD'
export const phone: Promise<string> = auth.phone('code')
auth.on('loggedIn', (s) => s.nope)
`

async function host (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  await stat(join(ROOT, 'dist/client/index.d.ts')).catch(() => {
    throw new Error('dist/client is missing: run `npm run build` first (`npm test` does)')
  })
  const dir = await mkdtemp(join(tmpdir(), 'wxauth-mp-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT })
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }]
  const pkg = join(dir, 'node_modules/fastify-wechat-auth')
  await mkdir(pkg, { recursive: true })
  await run('tar', ['-xzf', join(dir, filename), '-C', pkg, '--strip-components=1'])
  for (const dep of TYPE_DEPENDENCIES) {
    await mkdir(join(dir, 'node_modules', dep, '..'), { recursive: true })
    await symlink(join(ROOT, 'node_modules', dep), join(dir, 'node_modules', dep), 'dir')
  }
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'mini-program', type: 'module', private: true }))
  await writeFile(join(dir, 'app.ts'), MINI_PROGRAM)
  await writeFile(join(dir, 'mistakes.ts'), MISTAKES)
  return dir
}

async function tsc (dir: string, files: string[], moduleResolution: 'NodeNext' | 'Bundler'): Promise<string> {
  const compilerOptions = {
    // TypeBox's own .d.ts name ES2018's AsyncIterableIterator; WeChat's TypeScript template uses ES2020.
    strict: true,
    skipLibCheck: false,
    noEmit: true,
    target: 'ES2017',
    lib: ['ES2020'],
    types: [],
    module: moduleResolution === 'Bundler' ? 'ESNext' : 'NodeNext',
    moduleResolution
  }
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }))
  const args = [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--pretty', 'false', '--listFiles']
  return await run(process.execPath, args, { cwd: dir }).then((r) => r.stdout, (err: { stdout: string }) => err.stdout)
}

const errorsOf = (out: string): string[] => [...out.matchAll(/^(\S+?)\((\d+),\d+\): error (TS\d+)/gm)].map(([, file, line, code]) => `${file}:${line} ${code}`)

test('fastify-wechat-auth/client from the packed tarball', async (t) => {
  const dir = await host(t)
  for (const resolution of ['NodeNext', 'Bundler'] as const) {
    const out = await tsc(dir, ['app.ts'], resolution)
    t.same(errorsOf(out), [], `a strict host without @types/node type-checks (moduleResolution ${resolution})`)
    t.ok(out.includes('/node_modules/fastify-wechat-auth/dist/client/index.d.ts'), 'the types come from the tarball, through its exports')
    t.notOk(out.includes('@types/node'), 'and bring no Node types')
  }
  t.same(errorsOf(await tsc(dir, ['mistakes.ts'], 'NodeNext')), ['mistakes.ts:4 TS2820', 'mistakes.ts:5 TS2322', 'mistakes.ts:6 TS2339'],
    'a misspelt code ("did you mean AUTH_TOKEN_EXPIRED?"), a wrong answer type and an unknown session field fail to compile')

  const client = await import(pathToFileURL(join(dir, 'node_modules/fastify-wechat-auth/dist/client/index.js')).href) as Record<string, unknown>
  t.equal(typeof client.createWechatAuthClient, 'function', 'the JavaScript loads')
  t.ok((await stat(join(dir, 'node_modules/fastify-wechat-auth/dist/client/wechat-auth-client.min.js'))).size <= 8 * 1024, 'the minified file ships, at most 8 KB')
})
