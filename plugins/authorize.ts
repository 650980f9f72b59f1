// Decorates fastify.authorize(requirement): an onRequest/preHandler hook that answers 403
// AUTH_FORBIDDEN (naming what is missing), 401 AUTH_STEP_UP_REQUIRED or 403 AUTH_ACCOUNT_BANNED
// (banned from the route's service). It reads what authenticate read in its one round trip, and
// authenticates first when no earlier hook did; it also fits @fastify/auth compositions.
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { AuthUser } from '../lib/access-tokens.js'
import { requirementCheck, type Requirement } from '../lib/permissions.js'
import { checkOptions } from '../lib/plugin-options.js'

export type { Requirement } from '../lib/permissions.js'

// Named out here: inside `declare module 'fastify'` the names resolve to fastify's own, so tsc drops
// their import from the .d.ts and a host that augments no FastifyReply cannot find it (TS2304).
type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

declare module 'fastify' {
  interface FastifyInstance {
    /** A hook that lets through callers with these roles, permissions, a recent step-up, no ban from `service`. */
    authorize: (requirement: Requirement) => Hook
  }
}

export default fp(async function wechatAuthAuthorize (fastify, opts) {
  checkOptions(opts, { plugin: 'wechatAuthAuthorize', rules: {}, encapsulated: false })
  const ttl = fastify.wechatAuthConfig.STEP_UP_TTL
  fastify.decorate('authorize', (requirement: Requirement) => {
    const check = requirementCheck(requirement, ttl) // a typo in a requirement fails at boot
    return async function authorize (request: FastifyRequest, reply: FastifyReply): Promise<void> {
      if ((request.wechatAuthUser as AuthUser | null) === null) await fastify.authenticate(request, reply)
      check(request.wechatAuthUser)
    }
  })
}, { name: 'wechat-auth-authorize', fastify: '5.x', dependencies: ['wechat-auth-config', 'wechat-auth-jwt'] })
