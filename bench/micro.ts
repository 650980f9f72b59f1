// `npm run bench:micro`: the CPU cost per operation of the hot-path choices BENCHMARKS.md quotes, each
// next to the way it was done before. Numbers only, no assertions; `npm run bench` is the real measure.
// The WeChat server runs in a child process, Redis in its own, so only the client's CPU is counted.
import { fork } from 'node:child_process'
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createSigner, createVerifier } from 'fast-jwt'
import { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import { createHs256Signer } from '../lib/jwt-signer.js'
import { createAsymmetricSigner } from '../lib/signing-keys.js'
import { connectRedis } from '../lib/store/redis-client.js'
import { createRedisStore } from '../lib/store/redis.js'
import { digest, newSessionId, userTag } from '../lib/ids.js'
import { createMetrics } from '../lib/metrics.js'
import { createWeChatClient } from '../lib/wechat-client.js'
import { freePort, startRedis } from './processes.js'

const ANSWER = JSON.stringify({ openid: 'oAbCdEfGhIjKlMnOpQrStUvWxYz1', session_key: 'c2Vzc2lvbi1rZXktMTIzNA==', unionid: 'uAbCdEfGhIjKlMnOpQrStUvWxYz1' })

const SYNC_OPS = Number(process.env.MICRO_OPS ?? 200_000)
const ASYNC_OPS = Number(process.env.MICRO_ASYNC_OPS ?? 30_000)
const CONCURRENCY = 50

/** µs of this process's CPU per call of `fn`, after a warm-up. */
function perOp (fn: (i: number) => unknown, ops = SYNC_OPS): number {
  for (let i = 0; i < ops / 10; i++) fn(i)
  const before = process.cpuUsage()
  for (let i = 0; i < ops; i++) fn(i)
  const used = process.cpuUsage(before)
  return (used.user + used.system) / ops
}

/** The same for an async operation run by CONCURRENCY callers at once. */
async function perAsyncOp (fn: (i: number) => Promise<unknown>, ops = ASYNC_OPS): Promise<number> {
  const run = async (n: number): Promise<void> => {
    let next = 0
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (next < n) await fn(next++) }))
  }
  await run(ops / 10)
  const before = process.cpuUsage()
  await run(ops)
  const used = process.cpuUsage(before)
  return (used.user + used.system) / ops
}

type Row = [string, number | null, number]

/**
 * What Prometheus metrics (METRICS_PORT) add on the hot path: a request counted, a store operation
 * timed. The timed and untimed calls differ by less than the noise of one measure, so each is measured
 * three times, alternated, and the least is kept.
 */
async function metricsRows (store: ReturnType<typeof createRedisStore>, check: (s: typeof store, i: number) => Promise<unknown>): Promise<Row[]> {
  const metrics = createMetrics({ defaultMetrics: false })
  const timed = metrics.instrumentStore(store)
  const [untimedUs, timedUs] = [[] as number[], [] as number[]]
  for (let i = 0; i < 3; i++) {
    untimedUs.push(await perAsyncOp(async (n) => await check(store, n)))
    timedUs.push(await perAsyncOp(async (n) => await check(timed, n)))
  }
  return [
    ['count a request answered (method, route, status, duration): lib/metrics.ts request()', null, perOp((i) => metrics.request('GET', '/auth/me', 200, (i % 100) / 1e5))],
    [`one Redis command, ${CONCURRENCY} at once: HMGET, untimed → timed by lib/metrics.ts instrumentStore() (least of 3, alternated)`,
      Math.min(...untimedUs), Math.min(...timedUs)]
  ]
}

async function main (): Promise<void> {
  const rows: Row[] = []

  const secret = 'a-jwt-secret-of-the-usual-length-0123456789'
  const payload = { sub: 'oAbCdEfGhIjKlMnOpQrStUvWxYz1', openid: 'oAbCdEfGhIjKlMnOpQrStUvWxYz1', sid: 'abcdefghijkl', jti: 'abcdefghijklmnop', aud: 'wx0123456789abcdef' }
  const fastJwt = createSigner({ key: secret, algorithm: 'HS256', iss: 'fastify-wechat-auth', expiresIn: 900_000 })
  const ours = createHs256Signer({ secret, iss: 'fastify-wechat-auth', ttlSec: 900 })
  rows.push(['sign an access token: fast-jwt\'s signer → lib/jwt-signer.ts', perOp(() => fastJwt({ ...payload })), perOp(() => ours(payload))])
  // JWT_ALGORITHM=ES256 / EdDSA: what asymmetric tokens cost against HS256 (lib/signing-keys.ts).
  for (const [algorithm, key] of [['ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey], ['EdDSA', generateKeyPairSync('ed25519').privateKey]] as const) {
    const signer = createAsymmetricSigner({ key, algorithm, kid: 'k', iss: 'fastify-wechat-auth', ttlSec: 900 })
    rows.push([`sign an access token: HS256 → ${algorithm}`, perOp(() => ours(payload), SYNC_OPS / 10), perOp(() => signer(payload), SYNC_OPS / 10)])
    const hsVerify = createVerifier({ key: secret, algorithms: ['HS256'] })
    const hsToken = ours(payload)
    const pub = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString()
    const verify = createVerifier({ key: pub, algorithms: [algorithm] })
    const token = signer(payload)
    rows.push([`verify an access token (not remembered): HS256 → ${algorithm}`, perOp(() => hsVerify(hsToken), SYNC_OPS / 10), perOp(() => verify(token), SYNC_OPS / 10)])
  }

  const input = (i: number): string => `wx0123456789abcdef\u0000user-${i}`
  rows.push(['128-bit digest: createHash() → crypto.hash()',
    perOp((i) => createHash('sha256').update(input(i)).digest().subarray(0, 16).toString('base64url')), perOp((i) => digest(input(i)))])

  const server = fork(fileURLToPath(import.meta.url), ['server'], { stdio: 'inherit' })
  try {
    const port = await new Promise<number>((resolve) => server.once('message', (m) => resolve(Number(m))))
    const apiBase = `http://127.0.0.1:${port}`
    const agent = new Agent({ keepAliveTimeout: 30_000, connections: 128 })
    const url = `${apiBase}/sns/jscode2session?appid=wx0123456789abcdef&secret=s&js_code=c&grant_type=authorization_code`
    const before = async (): Promise<unknown> => {
      const res = await request(url, { dispatcher: agent, signal: AbortSignal.timeout(5000), headersTimeout: 5000, bodyTimeout: 5000 })
      const chunks: Buffer[] = []
      for await (const chunk of res.body as AsyncIterable<Buffer>) chunks.push(chunk)
      return JSON.parse(Buffer.concat(chunks).toString('utf8'))
    }
    const client = createWeChatClient({ appid: 'wx0123456789abcdef', secret: 's', apiBase, timeoutMs: 5000, log: { warn: () => {}, error: () => {} } as never, dispatcher: agent })
    rows.push([`code2Session, ${CONCURRENCY} at once: request() + AbortSignal + body stream → dispatch() (lib/wechat-client.ts)`,
      await perAsyncOp(before), await perAsyncOp(async (i) => await client.code2Session(`code-${i}`))])
    await agent.close()
  } finally {
    server.kill()
  }

  const redisPort = await freePort()
  const redis = await startRedis(redisPort)
  try {
    // The same store over the two clients it accepts: ioredis (the gateway's own client before,
    // with auto-pipelining as it was set up) and node-redis (the gateway's own client now).
    const url = `redis://127.0.0.1:${redisPort}`
    const ioredis = new Redis(url, { enableAutoPipelining: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    const stores = [
      createRedisStore({ client: ioredis, keyPrefix: 'micro:', timeoutMs: 1000, ownsClient: true }),
      createRedisStore({ client: await connectRedis({ url, timeoutMs: 1000 }), keyPrefix: 'micro:', timeoutMs: 1000, ownsClient: true })
    ] as const
    const ref = { tag: userTag('wx0123456789abcdef', 'alice'), sid: newSessionId() }
    await stores[1].createSession(ref, { sub: 'alice', openid: 'alice', sessionKey: 'k' }, 'h0', 600)
    const [hmget, script] = [[] as number[], [] as number[]]
    for (const store of stores) {
      hmget.push(await perAsyncOp(async (i) => await store.checkAccess(ref, `j${i % 100}`)))
      script.push(await perAsyncOp(async (i) => await store.hit(`k${i % 100}`, 60_000)))
    }
    rows.push([`one Redis command, ${CONCURRENCY} at once: HMGET (the revocation check); ioredis → node-redis`, hmget[0] ?? null, hmget[1] ?? 0])
    rows.push([`one Redis command, ${CONCURRENCY} at once: a Lua script (the rate-limit counter); ioredis → node-redis`, script[0] ?? null, script[1] ?? 0])
    rows.push(...await metricsRows(stores[1], async (store, i) => await store.checkAccess(ref, `j${i % 100}`)))
    for (const store of stores) await store.close()
  } finally {
    await redis.stop()
  }

  const us = (n: number | null): string => n === null ? '' : n.toFixed(1)
  process.stdout.write([
    `CPU µs per operation of this process (Node ${process.version}); the WeChat stand-in and Redis run in their own processes.`,
    '',
    '| operation | before | now |',
    '| --- | ---: | ---: |',
    ...rows.map(([name, old, now]) => `| ${name} | ${us(old)} | ${us(now)} |`)
  ].join('\n') + '\n')
}

if (process.argv[2] === 'server') {
  // A stand-in for WeChat's jscode2session: the same answer for every code, as text/plain.
  const srv = createServer((_req, res) => { res.setHeader('content-type', 'text/plain'); res.end(ANSWER) })
  srv.listen(0, '127.0.0.1', () => process.send?.((srv.address() as AddressInfo).port))
} else {
  await main()
}
