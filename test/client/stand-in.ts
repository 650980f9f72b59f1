// A `wx` stand-in for the client's tests: request() makes real HTTP requests (node:http) to a listening
// gateway, login() mints the simulator's codes (`<user>.<n>`), storage is a Map. Every call is counted,
// and a test can drop the answer of a request (the request reaches the gateway, the answer is lost).
import { request as httpRequest } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { wechatAuthErrorHandler } from '../../index.js'
import type { Platform, PlatformRequestOptions, PlatformResponse } from '../../client/index.js'
import { buildApp, startRedis, startSim, type BuildOptions } from '../helper.js'

export interface StandIn {
  wx: Platform
  /** wx.login() calls. */
  logins: number
  /** Requests by `METHOD path`, counted when sent. */
  calls: Record<string, number>
  storage: Map<string, unknown>
  /** The user whose codes wx.login() mints (the simulator's `invalid` always fails). */
  user: string
  /** Answers of the next requests to this `METHOD path` are lost: fail() instead of success(), after the gateway answered. */
  drop: (route: string, times?: number) => void
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
  let codes = 0
  const s: StandIn = {
    logins: 0,
    calls: {},
    storage: new Map(),
    user,
    dropped: [],
    drop: (route, times = 1) => { drops[route] = times },
    wx: {
      request: (opts) => {
        const route = `${opts.method} ${new URL(opts.url).pathname}`
        s.calls[route] = (s.calls[route] ?? 0) + 1
        send(opts).then((res) => {
          if ((drops[route] ?? 0) > 0) {
            drops[route] = (drops[route] ?? 0) - 1
            s.dropped.push(res)
            opts.fail({ errMsg: 'request:fail timeout' })
          } else {
            opts.success(res)
          }
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
