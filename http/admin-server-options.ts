// The admin listener's Fastify options (server.ts's listenAdmin; test/logs.test.ts builds it the same way).
import type { FastifyBaseLogger, FastifyRequest, FastifyServerOptions } from 'fastify'
import { holdsSecret, REDACTED } from './logged-url.js'
import { requestSerializer, serverOptions } from './server-options.js'

/**
 * The admin listener's options (server.ts): the gateway's, logging through `log` as listener
 * `admin`. A URL that holds `token` (as sent or percent-decoded) is logged `[redacted]` whole: an
 * ADMIN_TOKEN need not look like a token (32 characters, any of them), so the request log's rules
 * (http/logged-url.ts) may not see one a client put in a path, or may redact only part of it.
 */
export function adminServerOptions (config: Parameters<typeof serverOptions>[0], log: FastifyBaseLogger, token: string): FastifyServerOptions {
  const { logger: _own, ...options } = serverOptions(config)
  const req = (request: FastifyRequest): Record<string, unknown> => {
    const line = requestSerializer(request)
    return holdsSecret(request.url, token) ? { ...line, url: REDACTED } : line
  }
  return { ...options, loggerInstance: log.child({ listener: 'admin' }, { serializers: { req } }) }
}
