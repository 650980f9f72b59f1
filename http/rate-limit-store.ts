// A @fastify/rate-limit store backed by the session store's `hit`, so rate limiting shares the
// store's deadline (STORE_TIMEOUT_MS) and fail-fast behaviour: @fastify/rate-limit's own Redis store
// has no deadline and, on a client with an offline queue, would hold requests during an outage.
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { CounterStore } from '../lib/store/types.js'

export function rateLimitStore (store: CounterStore): FastifyRateLimitStoreCtor {
  class SessionRateLimitStore implements FastifyRateLimitStore {
    constructor (_options: unknown, private readonly scope = '') {}

    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number): void {
      store.hit(`${this.scope}${key}`, timeWindow).then(
        ({ current, ttlMs }) => callback(null, { current, ttl: ttlMs }),
        (err: Error) => callback(err)
      )
    }

    child (routeOptions: Parameters<FastifyRateLimitStore['child']>[0]): FastifyRateLimitStore {
      // At run time the plugin passes its merged parameters, with the route under `routeInfo`
      // (its typings say otherwise); one budget per method and URL, as its own stores do, or one
      // per `groupId` for routes that share a budget (a QR login's polls and its event stream).
      const { routeInfo, groupId } = routeOptions as unknown as { routeInfo: { method: string, url: string }, groupId?: string }
      return new SessionRateLimitStore(undefined, groupId !== undefined ? `group:${groupId}:` : `${routeInfo.method}${routeInfo.url}:`)
    }
  }
  return SessionRateLimitStore
}
