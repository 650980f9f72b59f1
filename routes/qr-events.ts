// GET /qr/:id/events: a web QR login's state as Server-Sent Events, for the web page. The state is
// sent at once and after every change made on any instance (the store's watch: Redis is polled at a
// modest interval, the memory store has an emitter); the stream ends with a final state (confirmed,
// cancelled, expired), at the code's expiry at the latest. While the store cannot be read, the page is
// told once (`event: unavailable` with the code), and the state is sent again once it can; past the
// expiry the stream ends instead, and the page's EventSource reconnects to the state or a coded 503.
// Registered by routes/qr.ts.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { onRequestHookHandler } from 'fastify'
import type { OutgoingHttpHeaders } from 'node:http'
import { AuthQrNotFoundError, RateLimitedError, StoreUnavailableError } from '../lib/errors.js'
import type { QrView } from '../lib/qr-login.js'
import { errorResponses, NoQuery, QrEvents, QrParams, RouteErrors as shared, Tags } from '../lib/schemas.js'

const FINAL = new Set(['confirmed', 'cancelled', 'expired'])
// A comment line now and then keeps proxies from closing an idle stream.
const HEARTBEAT_MS = 15_000
// While the store does not answer, a stream reads its state again this often.
const UNAVAILABLE_RETRY_MS = 1_000

/** `pollLimit`: the RATE_LIMIT_QR_POLL_MAX limiter GET /qr/:id counts in too (routes/qr.ts). */
const qrEventRoutes: FastifyPluginAsyncTypebox<{ pollLimit: onRequestHookHandler }> = async function qrEventRoutes (fastify, { pollLimit }) {
  const { qr } = fastify.wechatAuthSessions
  const open = new Set<() => void>()
  // Streams end before the server closes: it would otherwise wait for them.
  fastify.addHook('preClose', async () => { for (const end of [...open]) end() })

  fastify.get('/qr/:id/events', {
    onRequest: pollLimit,
    config: { rateLimit: false },
    schema: {
      summary: 'The state of a web QR login as Server-Sent Events',
      description: '`event: state` with `data: { state, expiresIn }` at once and after each change; the stream ends after confirmed, cancelled or expired. `event: unavailable` with `data: { code }` when the store cannot be read: the state follows once it can (or, past the expiry, the stream ends).',
      tags: [Tags.sessions],
      operationId: 'qrLoginEvents',
      params: QrParams,
      querystring: NoQuery,
      response: {
        200: { description: 'the event stream', content: { 'text/event-stream': { schema: QrEvents } } },
        ...errorResponses(...shared.any, ...shared.params, RateLimitedError, AuthQrNotFoundError, StoreUnavailableError)
      }
    }
  }, async (request, reply) => {
    const { id } = request.params
    const first = await qr.status(id) // an unknown id is a coded 404 before the stream starts
    reply.hijack()
    const res = reply.raw
    // The client went away while the state was read: its 'close' has come and will not come again,
    // so a stream started now would watch the store until the code expires, for no one.
    if (res.destroyed) return
    // With the headers set so far (the rate limit's, the request id): a hijacked reply sends no others.
    res.writeHead(200, { ...reply.getHeaders() as OutgoingHttpHeaders, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' })
    // HEAD: the headers only. Node sends them at the end, which a stream reaches at the QR login's end at the latest.
    if (request.method === 'HEAD') { res.end(); return }
    let last = ''
    let ended = false
    let unavailable = false
    let retry: NodeJS.Timeout | undefined
    const deadline = Date.now() + first.expiresIn * 1000
    const send = (view: QrView): void => {
      if (ended || view.state === last) return
      last = view.state
      res.write(`event: state\ndata: ${JSON.stringify({ state: view.state, expiresIn: view.expiresIn })}\n\n`)
      if (FINAL.has(view.state)) end()
    }
    const check = (): void => {
      qr.status(id).then((view) => { unavailable = false; send(view) }, (err: unknown) => {
        if (err instanceof AuthQrNotFoundError) { send({ state: 'expired', expiresIn: 0 }); return } // ended long ago
        if (ended) return
        if (!unavailable) {
          // The watch tells again when the store answers; the state is then sent even if unchanged.
          unavailable = true
          last = ''
          const code = err instanceof StoreUnavailableError ? err.code : 'INTERNAL_ERROR'
          if (code === 'INTERNAL_ERROR') request.log.error({ err }, 'a QR login\'s state could not be read')
          res.write(`event: unavailable\ndata: ${JSON.stringify({ code })}\n\n`)
        }
        if (Date.now() >= deadline) end()
        // Read again until the store answers: the watch may not tell (its own reads may have worked).
        else retry ??= setTimeout(() => { retry = undefined; check() }, UNAVAILABLE_RETRY_MS)
      })
    }
    const unwatch = qr.watch(id, check)
    const expiry = setTimeout(check, first.expiresIn * 1000 + 100)
    const heartbeat = setInterval(() => { res.write(': keep-alive\n\n') }, HEARTBEAT_MS)
    function end (): void {
      if (ended) return
      ended = true
      unwatch()
      clearTimeout(expiry)
      clearTimeout(retry)
      clearInterval(heartbeat)
      open.delete(end)
      res.end()
    }
    open.add(end)
    res.on('close', end)
    send(first)
  })
}

export default qrEventRoutes
