// Rate limits counted in the same Redis round trip as the flow's first store command (issue 15: one
// round trip per refresh, two per login). @fastify/rate-limit counts in a hook and waits for the
// answer before the handler runs: a round trip of its own. Here the count is sent when the handler
// starts, and the flow sends its next command in the same turn of the event loop (node-redis and
// ioredis write both before either is answered), then waits for both:
// - login: counted with the claim of the wx.login() code. Over the budget, the claim is released
//   and WeChat is not called (lib/code-exchange.ts).
// - refresh: counted with the rotation. Over the budget, the rotation has been applied but its answer
//   is withheld (429): the client keeps its token, and when it tries again the rotation is taken for
//   one whose answer was lost (never delivered: lib/refresh.ts), and it gets the same successor.
// The count stays exact and shared by every instance (the same `hit` of the store, the same keys as
// @fastify/rate-limit's: budgets carry over a rolling upgrade), with the same answers and headers:
// x-ratelimit-limit, -remaining and -reset on every answer, retry-after and 429 RATE_LIMITED over it.
// Unlike the hook, a request refused before its handler (a body that fails the schema: 400) is not
// counted: it costs no store command either.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { RateLimitedError } from '../lib/errors.js'
import type { Gate } from '../lib/rate-gate.js'
import type { CounterStore } from '../lib/store/types.js'

/** Starts counting `request`: its store command is sent at once, the verdict comes with the flow's next one. */
export type CountedWithNext = (request: FastifyRequest, reply: FastifyReply) => Gate

/** "59 seconds", "1 minute": how @fastify/rate-limit words its `after`, which RATE_LIMITED's message carries. */
export function wordedAfter (seconds: number): string {
  if (seconds >= 60) {
    const minutes = Math.round(seconds / 60)
    return minutes === 1 ? '1 minute' : `${minutes} minutes`
  }
  return seconds === 1 ? '1 second' : `${seconds} seconds`
}

export function countedWithNext (store: CounterStore, opts: { scope: string, max: number, windowMs: number, key: (request: FastifyRequest) => string }): CountedWithNext {
  return (request, reply) => {
    const gate = store.hit(`${opts.scope}${opts.key(request)}`, opts.windowMs).then(({ current, ttlMs }) => {
      const reset = Math.ceil(ttlMs / 1000)
      reply.header('x-ratelimit-limit', opts.max).header('x-ratelimit-remaining', Math.max(0, opts.max - current)).header('x-ratelimit-reset', reset)
      if (current > opts.max) {
        reply.header('retry-after', reset)
        throw new RateLimitedError(wordedAfter(reset))
      }
    })
    // A flow that fails before it waits for the verdict (an unknown appid) is answered by `gated`,
    // which waits for it then: never an unhandled rejection.
    gate.catch(() => {})
    return gate
  }
}

/**
 * What a counted request is answered: the flow's answer within the budget; over it, 429 whatever the
 * flow said (a guess at a refresh token learns nothing past the budget).
 */
export async function gated<T> (gate: Gate | undefined, flow: Promise<T>): Promise<T> {
  let answer: T
  try {
    answer = await flow
  } catch (err) {
    await gate
    throw err
  }
  await gate
  return answer
}
