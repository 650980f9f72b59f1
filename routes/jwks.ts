// GET /.well-known/jwks.json: the public keys access tokens are verified with (JWT_ALGORITHM ES256 or
// EdDSA), the signing key first, then the keys before a rotation, each named by its kid. Services
// behind the gateway verify its tokens with these, without sharing a secret. Not registered with HS256.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Jwks, Tags } from '../lib/schemas.js'

export interface JwksRouteOptions {
  path: string
}

const jwksRoutes: FastifyPluginAsyncTypebox<JwksRouteOptions> = async function jwksRoutes (fastify, opts) {
  // The keys change only with the configuration: one body for the process's life.
  const body = fastify.wechatAuthTokens.publicKeys()
  // No querystring schema, unlike the gateway's other routes: a verifier's JWKS fetcher may add a
  // cache-buster, and a refused fetch would leave it unable to verify tokens.
  fastify.get(opts.path, {
    schema: { summary: 'The public keys of the gateway\'s access tokens (JWKS)', tags: [Tags.keys], operationId: 'jwks', response: { 200: Jwks } }
  }, async (_request, reply) => {
    // Verifiers may cache it this long: a new key is published (in JWT_PREVIOUS_PUBLIC_KEYS) on every
    // instance at least this long before it signs (docs/operations.md, rotating without downtime).
    reply.header('cache-control', 'public, max-age=300')
    return body
  })
}

export default jwksRoutes
