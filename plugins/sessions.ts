// Decorates fastify.wechatAuthSessions: the login, refresh and logout flows (lib/sessions.ts), built
// from the WeChat client, the session store and the access-token signer. Routes call these and
// nothing else.
import fp from 'fastify-plugin'
import { createSessions, type ResolveUser, type Sessions } from '../lib/sessions.js'

export type { ResolveUser, WeChatIdentity } from '../lib/sessions.js'

export interface SessionsPluginOptions {
  resolveUser?: ResolveUser
}

declare module 'fastify' {
  interface FastifyInstance {
    wechatAuthSessions: Sessions
  }
}

export default fp<SessionsPluginOptions>(async function wechatAuthSessions (fastify, opts) {
  fastify.decorate('wechatAuthSessions', createSessions({
    store: fastify.wechatAuthStore,
    wechat: fastify.wechat,
    tokens: fastify.wechatAuthTokens,
    config: fastify.wechatAuthConfig,
    resolveUser: opts.resolveUser,
    log: fastify.log
  }))
}, { name: 'wechat-auth-sessions', fastify: '5.x', dependencies: ['wechat-auth-config', 'wechat-auth-store', 'wechat', 'wechat-auth-jwt'] })
