// A `wx` stand-in for the client's tests: request() makes real HTTP requests (node:http) to a listening
// gateway, login() mints the simulator's codes (`<user>.<n>`), storage is a Map. Every call is counted,
// and a test can drop, replace or hold the answer of a request (the request reaches the gateway, the
// answer is lost, changed on the way, or late).
import { request as httpRequest } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { wechatAuthErrorHandler } from '../../index.js'
import type { Platform, PlatformRequestOptions, PlatformResponse } from '../../client/index.js'
import { createHs256Signer } from '../../lib/jwt-signer.js'
import { JWT_SECRET, buildApp, startRedis, startSim, type BuildOptions } from '../helper.js'

export interface StandIn {
  wx: Platform
  /** wx.login() calls. */
  logins: number
  /** Requests by `METHOD path`, counted when sent. */
  calls: Record<string, number>
  storage: Map<string, unknown>
  /** The user whose codes wx.login() mints (the simulator's `invalid` always fails). */
  user: string
  /**
   * Answers of the next requests to this `METHOD path` are lost: fail() instead of success(), after the
   * gateway answered; or, given `instead`, replaced by it (a proxy that timed out after the gateway acted).
   */
  drop: (route: string, times?: number, instead?: PlatformResponse) => void
  /** The next answer to this `METHOD path` is held until release(); `answered` says the gateway has answered. */
  hold: (route: string) => { answered: Promise<void>, release: () => void }
  /** The answers that were dropped, as the gateway sent them. */
  dropped: PlatformResponse[]
}

function send (opts: PlatformRequestOptions): Promise<PlatformResponse> {
  const body = opts.data === undefined ? undefined : JSON.stringify(opts.data)
  return new Promise((resolve, reject) => {
    const req = httpRequest(opts.url, { method: opts.method, headers: opts.header }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let data: unknown = text
        // As wx.request with dataType json: parsed when it is JSON, the text otherwise.
        try { data = JSON.parse(text) } catch {}
        resolve({ statusCode: res.statusCode ?? 0, data, header: res.headers as Record<string, string> })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

export function standIn (user = 'alice'): StandIn {
  const drops: Record<string, number> = {}
  const instead: Record<string, PlatformResponse | undefined> = {}
  const holds: Record<string, ((deliver: () => void) => void) | undefined> = {}
  let codes = 0
  const s: StandIn = {
    logins: 0,
    calls: {},
    storage: new Map(),
    user,
    dropped: [],
    drop: (route, times = 1, answer) => {
      drops[route] = times
      instead[route] = answer
    },
    hold: (route) => {
      let deliver = (): void => {}
      let arrived = (): void => {}
      const answered = new Promise<void>((resolve) => { arrived = resolve })
      holds[route] = (d) => {
        holds[route] = undefined
        deliver = d
        arrived()
      }
      return { answered, release: () => deliver() }
    },
    wx: {
      request: (opts) => {
        const route = `${opts.method} ${new URL(opts.url).pathname}`
        s.calls[route] = (s.calls[route] ?? 0) + 1
        const deliver = (res: PlatformResponse): void => {
          const replaced = instead[route]
          if ((drops[route] ?? 0) > 0) {
            drops[route] = (drops[route] ?? 0) - 1
            s.dropped.push(res)
            if (replaced !== undefined) opts.success(replaced)
            else opts.fail({ errMsg: 'request:fail timeout' })
          } else {
            opts.success(res)
          }
        }
        send(opts).then((res) => {
          const held = holds[route]
          if (held !== undefined) held(() => deliver(res))
          else deliver(res)
        }, (err: Error) => opts.fail({ errMsg: `request:fail ${err.message}` }))
      },
      login: (opts) => {
        s.logins++
        const code = `${s.user}.${++codes}`
        setImmediate(() => opts.success({ code }))
      },
      getStorageSync: (key) => s.storage.get(key) ?? '',
      setStorageSync: (key, value) => { s.storage.set(key, JSON.parse(JSON.stringify(value))) },
      removeStorageSync: (key) => { s.storage.delete(key) }
    }
  }
  return s
}

/**
 * A listening gateway (real Redis, the simulator) with a host's routes: GET /api/orders behind
 * fastify.authenticate, POST /api/refund behind authorize({ stepUp: true }), and what `routes` adds.
 */
export async function gateway (t: Test, opts: Partial<BuildOptions> & { routes?: (app: FastifyInstance) => void } = {}) {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const { routes, ...rest } = opts
  const app = await buildApp(t, {
    sim,
    redisServer: redis,
    ...rest,
    extend: (app) => {
      app.setErrorHandler(wechatAuthErrorHandler)
      app.get('/api/orders', { onRequest: app.authenticate }, async (request) => ({ orders: [], openid: request.wechatAuthUser?.openid }))
      app.post('/api/refund', { onRequest: app.authorize({ stepUp: true }) }, async () => ({ refunded: true }))
      routes?.(app)
    }
  })
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, sim, redis, baseUrl }
}

/** The client's clock and timer, moved by the test: no test waits. */
export function fakeTime (start = Date.now()) {
  const clock = { at: start, slept: [] as number[] }
  return {
    clock,
    now: () => clock.at,
    sleep: async (ms: number) => { clock.slept.push(ms) }
  }
}

/** The same claims signed a minute ago: an access token the gateway finds expired, whatever the device thinks. */
export function expiredCopy (accessToken: string, ttlSec = 30): string {
  const claims = JSON.parse(Buffer.from(accessToken.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>
  // The signer adds iss, iat and exp: the minute-old ones.
  const { iss, ...payload } = claims
  return createHs256Signer({ secret: JWT_SECRET, iss: String(iss), ttlSec, now: () => Date.now() - 60_000 })(payload)
}
