// A WeChat server stand-in for development and tests: a real HTTP server that implements
// jscode2session as described in ../shared/wechat-api.md, including its traps (text/plain JSON,
// no errcode on success). A code is `<user>` or `<user>.<anything>`; each code works once.
// Special users produce WeChat's errors so every path can be tried by hand:
//   invalid -> 40029, risky -> 40226, limit -> 45011, busy -> -1 on the first try of a code,
//   slow -> answers after `slowMs`, garbage -> a non-JSON body, nounion -> no unionid.
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface SimulatorOptions {
  appid?: string
  secret?: string
  host?: string
  port?: number
  /** How long the `slow` user waits before answering, in ms. */
  slowMs?: number
}

export interface SimulatorCall {
  path: string
  /** The js_code WeChat received (after URL decoding). */
  code: string | null
  errcode: number
}

export interface Simulator {
  url: string
  appid: string
  secret: string
  /** Every call received, in order; tests assert on it. */
  calls: SimulatorCall[]
  /** The openid a user gets, as the simulator computes it. */
  openidOf: (user: string) => string
  unionidOf: (user: string) => string
  /** The last session_key issued to a user. */
  sessionKeyOf: (user: string) => string | undefined
  close: () => Promise<void>
}

export const DEV_APPID = 'wx00000000000000d0'

const id = (...parts: string[]): string =>
  createHash('sha256').update(parts.join('\u0000')).digest('base64url').slice(0, 27)

function send (res: ServerResponse, status: number, body: unknown): void {
  // WeChat answers JSON as text/plain; clients must parse regardless of the header.
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

export async function startSimulator (opts: SimulatorOptions = {}): Promise<Simulator> {
  const appid = opts.appid ?? DEV_APPID
  const secret = opts.secret ?? randomBytes(16).toString('hex')
  const slowMs = opts.slowMs ?? 30_000
  const usedCodes = new Set<string>()
  const triedCodes = new Set<string>()
  const sessionKeys = new Map<string, string>()
  const calls: SimulatorCall[] = []
  const pending = new Set<NodeJS.Timeout>()

  const openidOf = (user: string): string => `o${id(appid, 'openid', user)}`
  const unionidOf = (user: string): string => `u${id('unionid', user)}`

  function code2Session (q: URLSearchParams): { errcode: number, body: unknown } {
    const code = q.get('js_code') ?? ''
    const fail = (errcode: number, errmsg: string): { errcode: number, body: unknown } =>
      ({ errcode, body: { errcode, errmsg: `${errmsg}, rid: ${randomBytes(6).toString('hex')}` } })
    if (q.get('grant_type') !== 'authorization_code') return fail(40002, 'invalid grant_type')
    if (q.get('appid') !== appid) return fail(40013, 'invalid appid')
    if (q.get('secret') !== secret) return fail(40125, 'invalid appsecret')
    if (code === '') return fail(41008, 'missing code')
    const user = code.split('.')[0] ?? ''
    if (usedCodes.has(code)) return fail(40163, 'code been used')
    if (user === 'invalid' || user === '') return fail(40029, 'invalid code')
    if (user === 'risky') return fail(40226, 'high risk user')
    if (user === 'limit') return fail(45011, 'api minute-quota reach limit')
    if (user === 'busy' && !triedCodes.has(code)) {
      triedCodes.add(code)
      return fail(-1, 'system error')
    }
    usedCodes.add(code)
    const sessionKey = randomBytes(16).toString('base64')
    sessionKeys.set(user, sessionKey)
    const body: Record<string, string> = { session_key: sessionKey, openid: openidOf(user) }
    if (!user.startsWith('nounion')) body.unionid = unionidOf(user)
    return { errcode: 0, body }
  }

  function handle (req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://simulator')
    if (req.method !== 'GET' || url.pathname !== '/sns/jscode2session') {
      send(res, 404, { errcode: 404, errmsg: 'not found' })
      return
    }
    const code = url.searchParams.get('js_code')
    const user = (code ?? '').split('.')[0]
    if (user === 'garbage') {
      calls.push({ path: url.pathname, code, errcode: 0 })
      send(res, 200, '<html><body>502 Bad Gateway</body></html>')
      return
    }
    const answer = code2Session(url.searchParams)
    calls.push({ path: url.pathname, code, errcode: answer.errcode })
    if (user === 'slow') {
      const t = setTimeout(() => { pending.delete(t); send(res, 200, answer.body) }, slowMs)
      pending.add(t)
      return
    }
    send(res, 200, answer.body)
  }

  const server: Server = createServer(handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve)
  })
  const addr = server.address() as AddressInfo
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address

  return {
    url: `http://${host}:${addr.port}`,
    appid,
    secret,
    calls,
    openidOf,
    unionidOf,
    sessionKeyOf: (user) => sessionKeys.get(user),
    async close () {
      for (const t of pending) clearTimeout(t)
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
