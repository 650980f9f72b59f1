// The floor (`BENCH_FLOOR=1 npm run bench`): a Fastify server that does, for each scenario's request,
// only the I/O and the crypto the gateway's answer needs, and none of its logic, so that its throughput
// against its own ceiling is what Node, Fastify, undici and node-redis allow on this machine for that
// work. A measuring instrument, not a gateway: it checks nothing a client could get wrong.
//
// - GET /health/live: the same trivial answer as the gateway's (its ceiling);
// - GET /auth/me: an HS256 token verified (one HMAC, the claims parsed, the expiry checked; a token
//   seen before, its expiry only, as the gateway remembers verified tokens), the gateway's answer's fields;
// - POST /auth/refresh: one Redis round trip (a script of one HGET), the crypto of a rotation (two
//   HMACs for the successor and its mac, two digests, the access token's HMAC), the pair;
// - POST /auth/login: two Redis round trips (the code's SET NX, a script of one HSET and PEXPIRE),
//   code2Session over HTTP as the gateway calls it (undici's dispatch, a keep-alive pool), the crypto of
//   a new session (the refresh token's mac, its digest, the access token's HMAC), the pair.
// The answers have the gateway's shapes and about its sizes; a refresh answers the token presented, so
// a refresh chain goes on where the gateway left it. Environment: the gateway's (PORT, REDIS_URL,
// WECHAT_API_BASE, WECHAT_APPID, WECHAT_SECRET, JWT_SECRET).
import { createHmac, createSecretKey, hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { createClient } from '@redis/client'
import Fastify from 'fastify'
import { Agent, type Dispatcher } from 'undici'

/** The environment's value of `name`, which the bench always sets. */
function need (name: string): string {
  const value = process.env[name]
  if (value === undefined) throw new Error(`floor: ${name} is not set`)
  return value
}
const env = { PORT: need('PORT'), REDIS_URL: need('REDIS_URL'), WECHAT_API_BASE: need('WECHAT_API_BASE'), WECHAT_APPID: need('WECHAT_APPID'), WECHAT_SECRET: need('WECHAT_SECRET'), JWT_SECRET: need('JWT_SECRET') }
const ISS = 'fastify-wechat-auth'
const TTL = 900
const key = createSecretKey(Buffer.from(env.JWT_SECRET, 'utf8'))
const macKey = createHmac('sha256', env.JWT_SECRET).update('mac').digest()
const HEADER = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')
const b64 = (b: Buffer): string => b.toString('base64url')
const hmac = (k: Buffer | ReturnType<typeof createSecretKey>, text: string): Buffer => createHmac('sha256', k).update(text).digest()
const digest = (text: string): string => b64(hash('sha256', text, 'buffer').subarray(0, 16))

function sign (claims: Record<string, unknown>): string {
  const iat = Math.floor(Date.now() / 1000)
  const body = `${HEADER}.${b64(Buffer.from(JSON.stringify({ ...claims, iss: ISS, iat, exp: iat + TTL })))}`
  return `${body}.${b64(hmac(key, body))}`
}

/**
 * The claims of a valid HS256 token of ours, or null. Verified tokens are remembered until they expire,
 * 10,000 at most, found as the gateway finds them (lib/verified-tokens.ts): by the token's last 12
 * characters, then compared whole. A client presents the same token for its whole life, so a repeat
 * costs a lookup and the expiry check.
 */
const verified = new Map<string, { token: string, claims: Record<string, unknown> }>()
function verify (token: string): Record<string, unknown> | null {
  const tail = token.slice(-12)
  const known = verified.get(tail)
  if (known?.token === token) return (known.claims.exp as number) > Date.now() / 1000 ? known.claims : null
  const claims = check(token)
  if (claims === null) return null
  if (verified.size >= 10_000) verified.delete(verified.keys().next().value as string)
  verified.set(tail, { token, claims })
  return claims
}

function check (token: string): Record<string, unknown> | null {
  const dot = token.lastIndexOf('.')
  if (dot < 0) return null
  const mac = Buffer.from(token.slice(dot + 1), 'base64url')
  const expected = hmac(key, token.slice(0, dot))
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return null
  const claims = JSON.parse(Buffer.from(token.slice(token.indexOf('.') + 1, dot), 'base64url').toString()) as Record<string, unknown>
  return typeof claims.exp === 'number' && claims.exp > Date.now() / 1000 ? claims : null
}

function pair (openid: string, unionid: string, sid: string, refreshToken: string): Record<string, unknown> {
  const accessToken = sign({ sub: openid, openid, sid, jti: b64(randomBytes(12)), aud: env.WECHAT_APPID, unionid })
  return { accessToken, tokenType: 'Bearer', expiresIn: TTL, refreshToken, refreshExpiresIn: 2_592_000, openid, unionid }
}

const wechat: Dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 128 })
const origin = new URL(env.WECHAT_API_BASE).origin

/** One GET to the simulator through undici's dispatch API, as the gateway makes it: the body's text. */
async function get (path: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    wechat.dispatch({ origin, path, method: 'GET' }, {
      onConnect: () => {},
      onHeaders: () => true,
      onData: (chunk: Buffer) => { chunks.push(chunk); return true },
      onComplete: () => { resolve(Buffer.concat(chunks).toString('utf8')) },
      onError: reject
    })
  })
}

const redis = createClient({ url: env.REDIS_URL })
await redis.connect()
const READ = await redis.scriptLoad("return redis.call('HGET', KEYS[1], ARGV[1])")
const WRITE = await redis.scriptLoad("redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return redis.call('PEXPIRE', KEYS[1], ARGV[3])")

const app = Fastify()
const ok = { status: 'ok' }
app.get('/health', async () => ok)
app.get('/health/live', async () => ok)

app.get('/auth/me', async (req, reply) => {
  const claims = verify((req.headers.authorization ?? '').slice(7))
  if (claims === null) return await reply.code(401).send({ code: 'AUTH_TOKEN_INVALID' })
  const at = (s: unknown): string => new Date(Number(s) * 1000).toISOString()
  return { openid: claims.openid, sessionId: claims.sid, issuedAt: at(claims.iat), expiresAt: at(claims.exp), roles: [], permissions: [], steppedUpAt: null, unionid: claims.unionid }
})

app.post<{ Body: { refreshToken: string } }>('/auth/refresh', async (req) => {
  const presented = req.body.refreshToken
  const [tag = '', sid = ''] = presented.split('.', 2)
  await redis.evalSha(READ, { keys: [`floor:{${tag}}`], arguments: [sid] })
  const successor = b64(createHmac('sha256', macKey).update(presented).update('\u0000').update(b64(randomBytes(12))).digest())
  const sealed = `${tag}.${sid}.1.${successor}.${b64(hmac(macKey, successor).subarray(0, 16))}`
  digest(presented)
  digest(sealed)
  return pair(`o${tag}`, `u${tag}`, sid, presented)
})

app.post<{ Body: { code: string } }>('/auth/login', async (req, reply) => {
  const { code } = req.body
  if (await redis.set(`floor:code:${code}`, '1', { NX: true, EX: 300 }) === null) return await reply.code(400).send({ code: 'AUTH_CODE_USED' })
  const query = new URLSearchParams({ appid: env.WECHAT_APPID, secret: env.WECHAT_SECRET, js_code: code, grant_type: 'authorization_code' })
  const wx = JSON.parse(await get(`/sns/jscode2session?${query.toString()}`)) as { openid: string, unionid: string, session_key: string }
  const [tag, sid] = [digest(wx.openid), b64(randomBytes(9))]
  const body = `${tag}.${sid}.0.${b64(randomBytes(32))}`
  const refreshToken = `${body}.${b64(hmac(macKey, body).subarray(0, 16))}`
  await redis.evalSha(WRITE, { keys: [`floor:{${tag}}`], arguments: [sid, `${digest(refreshToken)}|${wx.session_key}`, String(TTL * 1000)] })
  return pair(wx.openid, wx.unionid, sid, refreshToken)
})

await app.listen({ port: Number(env.PORT), host: '127.0.0.1' })
