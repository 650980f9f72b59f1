// Decorates fastify.wechatAuthSessions: the login, refresh and logout flows (lib/sessions.ts), built
// from the WeChat client, the session store and the access-token signer. Routes call these and
// nothing else. Their audit events (lib/audit.ts) are logged (info, `audit`) and emitted on
// fastify.wechatAuthEvents ('audit') for a host that subscribes.
import { EventEmitter } from 'node:events'
import fp from 'fastify-plugin'
import { createAudit, type AuditEvent } from '../lib/audit.js'
import { createSessions, type ResolveUser, type Sessions } from '../lib/sessions.js'

export type { ResolveUser, WeChatIdentity } from '../lib/sessions.js'
export type { AuditEvent } from '../lib/audit.js'

export interface SessionsPluginOptions {
  resolveUser?: ResolveUser
}

declare module 'fastify' {
  interface FastifyInstance {
    wechatAuthSessions: Sessions
    /** Emits 'audit' with each AuditEvent: a session opened, refreshed, reused, ended; step-up; kick, ban, roles. */
    wechatAuthEvents: EventEmitter<{ audit: [AuditEvent] }>
  }
}

export default fp<SessionsPluginOptions>(async function wechatAuthSessions (fastify, opts) {
  const events = new EventEmitter<{ audit: [AuditEvent] }>()
  const audit = createAudit((event) => {
    fastify.log.info({ audit: event }, 'audit')
    events.emit('audit', event)
  })
  fastify.decorate('wechatAuthEvents', events)
  fastify.decorate('wechatAuthSessions', createSessions({
    store: fastify.wechatAuthStore,
    wechat: fastify.wechat,
    tokens: fastify.wechatAuthTokens,
    config: fastify.wechatAuthConfig,
    resolveUser: opts.resolveUser,
    log: fastify.log,
    audit
  }))
}, { name: 'wechat-auth-sessions', fastify: '5.x', dependencies: ['wechat-auth-config', 'wechat-auth-store', 'wechat', 'wechat-auth-jwt'] })
