// What ships to mini programs: fastify-wechat-auth/client bundled and minified as `npm run build` does
// (esbuild, ES2017), at most 8 KB; run with nothing but the ES built-ins and setTimeout (no Node, no
// fetch), and type-checked with the ES2017 library and no @types/node.
import { readdir, stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { runInNewContext } from 'node:vm'
import { gzipSync } from 'node:zlib'
import { build, type BuildOptions } from 'esbuild'
import { test } from 'tap'
import ts from 'typescript'
import type * as ClientModule from '../../client/index.js'
import { gateway, standIn } from './stand-in.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const MAX_MINIFIED = 8 * 1024
// The options of `npm run build:client` (package.json).
const SHIPPED: BuildOptions = { entryPoints: [`${ROOT}client/index.ts`], bundle: true, minify: true, format: 'esm', target: 'es2017', platform: 'neutral', write: false }

async function bundle (opts: BuildOptions = {}): Promise<string> {
  const out = await build({ ...SHIPPED, ...opts })
  return out.outputFiles?.[0]?.text ?? ''
}

test('the client minified is at most 8 KB, and uses nothing of Node or the browser', async (t) => {
  const code = await bundle()
  const gzipped = gzipSync(code, { level: 9 }).length
  t.comment(`client: ${code.length} bytes minified, ${gzipped} gzipped (BENCHMARKS.md)`)
  t.ok(code.length <= MAX_MINIFIED, `${code.length} bytes minified, at most ${MAX_MINIFIED}`)
  for (const name of ['require(', 'process.', 'Buffer', 'fetch(', 'window.', 'globalThis', 'XMLHttpRequest']) {
    t.notOk(code.includes(name), `no ${name}`)
  }
  const shipped = `${ROOT}dist/client/wechat-auth-client.min.js`
  const built = await stat(shipped).catch(() => null)
  if (built !== null) t.ok(built.size <= MAX_MINIFIED, `dist/client/wechat-auth-client.min.js: ${built.size} bytes`)
})

test('the bundle runs in a context that has only the ES built-ins and setTimeout', async (t) => {
  const code = await bundle({ format: 'iife', globalName: 'WechatAuthClient' })
  const context: Record<string, unknown> = { setTimeout }
  runInNewContext(code, context)
  const { createWechatAuthClient } = context.WechatAuthClient as typeof ClientModule
  const { baseUrl } = await gateway(t)
  const mp = standIn('alice')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const answers = await Promise.all(Array.from({ length: 5 }, async () => await client.request({ url: '/api/orders' })))
  t.same(answers.map((a) => a.statusCode), [200, 200, 200, 200, 200])
  t.equal(mp.logins, 1)
  t.equal(mp.calls['POST /auth/login'], 1)
})

test('the client type-checks with the ES2017 library and without @types/node', async (t) => {
  const files = (await readdir(`${ROOT}client`)).filter((f) => f.endsWith('.ts')).map((f) => `${ROOT}client/${f}`)
  const config = ts.getParsedCommandLineOfConfigFile(`${ROOT}tsconfig.client.json`, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })
  const program = ts.createProgram(files, { ...config?.options, lib: ['lib.es2017.d.ts'], types: [], noEmit: true })
  // The server's modules it takes types from are checked too, with errors of their own (node:http):
  // only the client's files count.
  const own = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName.startsWith(`${ROOT}client/`))
  t.same(own.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [], 'no error in client/')
  t.notOk(program.getSourceFiles().some((f) => f.fileName.includes('@types/node')), 'no Node types in the program')
})
