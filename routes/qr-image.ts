// GET /qr/:id/image: the mini-program code of a web QR login, made by WeChat's wxacode.getUnlimited
// with the QR login's id as `scene`, through the mini program's shared access_token
// (fastify.wechat). Registered by routes/qr.ts.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Agent } from 'undici'
import type { PerMinute } from '../http/route-context.js'
import { AuthQrExpiredError, AuthQrNotFoundError, AuthQrStateError, RateLimitedError, StoreUnavailableError, WxAccessTokenRejectedError, WxQrPageRejectedError } from '../lib/errors.js'
import { errorResponses, NoQuery, QrImage, QrParams, RouteErrors as shared, Tags } from '../lib/schemas.js'
import { createWxacode } from '../lib/wechat-wxacode.js'

/** A rate limit per client IP and route name (routes/qr.ts). */
export type PerIp = (name: string, max: number) => ReturnType<PerMinute> & { groupId: string, keyGenerator: (request: FastifyRequest) => string }

const qrImageRoutes: FastifyPluginAsyncTypebox<{ perIp: PerIp }> = async function qrImageRoutes (fastify, { perIp }) {
  const { qr } = fastify.wechatAuthSessions
  const config = fastify.wechatAuthConfig
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 16 })
  fastify.addHook('onClose', async () => { await dispatcher.destroy() })
  const wxacode = createWxacode({
    // Where fastify.wechat calls: the development simulator while it runs.
    apiBase: fastify.hasDecorator('wechatAuthSimulator') ? fastify.wechatAuthSimulator.url : config.WECHAT_API_BASE,
    dispatcher,
    timeoutMs: config.WECHAT_TIMEOUT_MS,
    log: fastify.log
  })

  fastify.get('/qr/:id/image', {
    // Each image is a WeChat call (5,000 a minute per mini program).
    config: { rateLimit: perIp('image', config.RATE_LIMIT_LOGIN_MAX) },
    schema: {
      summary: 'The mini-program code of a web QR login (PNG, by WeChat\'s wxacode.getUnlimited)',
      tags: [Tags.sessions],
      operationId: 'qrLoginImage',
      params: QrParams,
      querystring: NoQuery,
      response: {
        200: { description: 'the image', content: { 'image/png': { schema: QrImage } } },
        ...errorResponses(...shared.any, ...shared.params, RateLimitedError, AuthQrNotFoundError, StoreUnavailableError, AuthQrExpiredError, AuthQrStateError, WxQrPageRejectedError, WxAccessTokenRejectedError,
          ...shared.wechat)
      }
    }
  }, async (request, reply) => {
    const { id } = request.params
    const appid = await qr.scannableApp(id)
    // A refused token (replaced by a force refresh elsewhere) is renewed once for every instance.
    const image = await fastify.wechat.withAccessToken(async (token) => await wxacode(token, { scene: id, page: config.QR_PAGE, envVersion: config.QR_ENV_VERSION }), appid)
    return await reply.type(image.contentType).header('cache-control', 'private, no-store').send(image.bytes)
  })
}

export default qrImageRoutes
