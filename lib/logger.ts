// The part of a logger the plain modules use: pino's (and so Fastify's) shape, without importing Fastify.
type LogFn = (obj: object, msg?: string) => void

export interface Logger {
  info: LogFn
  warn: LogFn
  error: LogFn
}
