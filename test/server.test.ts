// The standalone process as `npm start` runs it (dist/server.js, built by `npm test` first):
// configuration errors stop it at once; with no configuration it serves over a real socket;
// SIGTERM closes it cleanly.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { test } from 'tap'
import { freePort } from './helper.js'

const entry = fileURLToPath(new URL('../dist/server.js', import.meta.url))
const simulatorEntry = fileURLToPath(new URL('../dist/simulator/cli.js', import.meta.url))

function run (env: Record<string, string>, file = entry): { output: () => string, exited: Promise<number | null>, kill: () => void } {
  const child = spawn(process.execPath, [file], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { output: () => out, exited, kill: () => child.kill('SIGTERM') }
}

test('the standalone server', { skip: existsSync(entry) ? false : 'run `npm run build` first (npm test does)' }, async (t) => {
  t.test('a bad variable stops it before it listens, naming the variable', async (t) => {
    const p = run({ PORT: 'eighty' })
    t.equal(await p.exited, 1)
    t.match(p.output(), /Invalid configuration: .*PORT/)
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
    for (let i = 0; i < 100 && !p.output().includes('Server listening'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
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
  })
})

test('the simulator runs on its own (npm run simulator)', { skip: existsSync(simulatorEntry) ? false : 'run `npm run build` first' }, async (t) => {
  const port = await freePort()
  const p = run({ PORT: String(port), WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'bench-secret-0123456789' }, simulatorEntry)
  t.teardown(p.kill)
  for (let i = 0; i < 100 && !p.output().includes('listening'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const q = new URLSearchParams({ appid: 'wx0123456789abcdef', secret: 'bench-secret-0123456789', js_code: 'alice', grant_type: 'authorization_code' })
  const res = await request(`http://127.0.0.1:${port}/sns/jscode2session?${q.toString()}`)
  t.match(await res.body.json(), { openid: String, session_key: String })
  p.kill()
  t.equal(await p.exited, 0)
})
