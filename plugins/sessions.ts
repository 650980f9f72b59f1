// Decorates fastify.wechatAuthSessions: the login, refresh and logout flows (lib/sessions.ts), built
// from the WeChat client, the session store and the access-token signer, and H5 login's official
// account (lib/wechat-oauth.ts) when it is on. Routes call these and nothing else. Their audit events (lib/audit.ts) are logged (info, `audit`) and emitted on
// fastify.wechatAuthEvents ('audit') for a host that subscribes.
import { EventEmitter } from 'node:events'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { auditSink, createAudit, type AuditEvent } from '../lib/audit.js'
import { checkOptions, FUNCTION } from '../lib/plugin-options.js'
import { createSessions, type ResolveUser, type Sessions } from '../lib/sessions.js'
import { createWeChatOAuth, type WeChatOAuth } from '../lib/wechat-oauth.js'
import { createWeChatDispatcher } from '../lib/wechat-transport.js'
import { DEV_OA_APPID, DEV_OA_SECRET } from '../simulator/oauth.js'

export type { ResolveUser, WeChatIdentity } from '../lib/sessions.js'
export type { H5UserInfo } from '../lib/sessions-deps.js'
export type { AuditEvent } from '../lib/audit.js'

export interface SessionsPluginOptions { resolveUser?: ResolveUser }

declare module 'fastify' {
  interface FastifyInstance {
    wechatAuthSessions: Sessions
    /** Emits 'audit' with each AuditEvent: a session opened, refreshed, reused, ended; step-up; kick, ban, roles. */
    wechatAuthEvents: EventEmitter<{ audit: [AuditEvent] }>
  }
}

export default fp<SessionsPluginOptions>(async function wechatAuthSessions (fastify, opts) {
  checkOptions(opts, { plugin: 'wechatAuthSessions', rules: { resolveUser: FUNCTION }, encapsulated: false })
  const events = new EventEmitter<{ audit: [AuditEvent] }>()
  const audit = createAudit(auditSink(fastify.log, events))
  fastify.decorate('wechatAuthEvents', events)
  const oauth = officialAccountOf(fastify)
  fastify.decorate('wechatAuthSessions', createSessions({
    store: fastify.wechatAuthStore,
    wechat: fastify.wechat,
    tokens: fastify.wechatAuthTokens,
    config: fastify.wechatAuthConfig,
    resolveUser: opts.resolveUser,
    log: fastify.log,
    audit,
    ...(oauth !== undefined && fastify.wechatAuthConfig.h5 !== undefined ? { h5: { oauth, returnUrls: fastify.wechatAuthConfig.h5.returnUrls } } : {})
  }))
}, { name: 'wechat-auth-sessions', fastify: '5.x', dependencies: ['wechat-auth-config', 'wechat-auth-store', 'wechat', 'wechat-auth-jwt'] })

/**
 * The official account of H5 login, when it is on: the configured one, or in development the built-in
 * simulator's (its authorize page stands in for WeChat's). Its connections close with the app.
 */
function officialAccountOf (fastify: FastifyInstance): WeChatOAuth | undefined {
  const config = fastify.wechatAuthConfig
  if (config.h5 === undefined) return undefined
  // Simulated only when no official account is configured (and the development simulator runs).
  const simulator = config.h5.account === undefined && fastify.hasDecorator('wechatAuthSimulator') ? fastify.wechatAuthSimulator : null
  if (config.h5.account === undefined && simulator === null) return undefined
  const dispatcher = createWeChatDispatcher()
  fastify.addHook('onClose', async () => { await dispatcher.destroy() })
  return createWeChatOAuth({
    account: config.h5.account ?? { appid: DEV_OA_APPID, secret: DEV_OA_SECRET },
    apiBase: simulator?.url ?? config.WECHAT_API_BASE,
    authorizeUrl: simulator === null ? config.WECHAT_OA_AUTHORIZE_URL : `${simulator.url}/connect/oauth2/authorize`,
    timeoutMs: config.WECHAT_TIMEOUT_MS,
    log: fastify.log,
    dispatcher
  })
}
