// Fastify's options for the standalone gateway. The tests build their instances from the same
// function, so they run with what production runs.
import type { FastifyServerOptions } from 'fastify'
import type { Config } from '../lib/schemas.js'

/** Log paths that may hold credentials; pino replaces them before a line is written. */
export const REDACT_PATHS = ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]']

export function parseTrustProxy (value: string): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (value === 'true') return true
  if (value === 'false' || value === '') return false
  if (/^\d+$/.test(value)) {
    const hops = Number(value) // trust the nearest `hops` proxies
    return (_address, hop) => hop < hops
  }
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '')
}

export interface ServerOptionsExtra {
  /** Where log lines go (tests capture them); stdout by default. */
  logStream?: { write: (line: string) => void }
}

export function serverOptions (config: Pick<Config, 'LOG_LEVEL' | 'TRUST_PROXY'>, extra: ServerOptionsExtra = {}): FastifyServerOptions {
  return {
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      ...(extra.logStream !== undefined ? { stream: extra.logStream } : {})
    },
    trustProxy: parseTrustProxy(config.TRUST_PROXY),
    // Refuse unknown body properties (additionalProperties: false) and wrong types instead of
    // silently dropping or converting them: a client bug should be a 400 it can see.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    return503OnClosing: true,
    requestTimeout: 30_000
  }
}
