// GET <AUTH_PREFIX>/demo: the web QR login end to end in a browser (lib/demo-page.ts), in development
// with the built-in WeChat simulator only. Never in production, never with real WeChat credentials:
// the page logs simulated users in with made-up codes, which only the simulator accepts.
import type { FastifyPluginAsync } from 'fastify'
import { DEMO_CSP, demoPage } from '../lib/demo-page.js'
import { checkOptions, PATH_OR_FALSE } from '../lib/plugin-options.js'
import { NoQuery } from '../lib/schemas.js'

export interface DemoRoutesOptions {
  /**
   * Where the demo page of the web QR login is served: `<AUTH_PREFIX>/demo` by default, only in
   * development with the built-in WeChat simulator (a path given otherwise serves nothing); false for nowhere.
   */
  demoPath?: string | false
}

const demoRoutes: FastifyPluginAsync<DemoRoutesOptions> = async function demoRoutes (fastify, opts) {
  const { production, useSimulator, AUTH_PREFIX } = fastify.wechatAuthConfig
  checkOptions(opts, { plugin: 'wechatAuthDemo', rules: { demoPath: PATH_OR_FALSE }, encapsulated: true })
  const path = opts.demoPath ?? `${AUTH_PREFIX}/demo`
  if (path === false || production || !useSimulator) return
  // The routes it calls, under the host's prefix too (`/api/auth` when the gateway is mounted at /api).
  const html = demoPage(`${fastify.prefix.replace(/\/$/, '')}${AUTH_PREFIX}`)
  fastify.get(path, { schema: { hide: true, querystring: NoQuery } }, async (_request, reply) => await reply
    .type('text/html; charset=utf-8')
    .header('content-security-policy', DEMO_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .send(html))
  // Debug: a start logs one line (the simulator's warning already says this is development).
  fastify.log.debug({ path }, 'web QR login demo page served')
}

export default demoRoutes
