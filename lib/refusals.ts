// The standalone server's answers before Fastify (http/server-options.ts): Node's parser and its
// timeouts meet these before a request exists, so they are answers, not error classes (lib/errors.ts).
// Their codes are known label values of the metrics (lib/metric-labels.ts). Not part of the package's
// exports: a host's server answers these itself.
/** An answer made by hand, outside Fastify's error handling. */
export interface CodedAnswer { statusCode: number, code: string, message: string }
export const BEFORE_FASTIFY = {
  badRequest: { statusCode: 400, code: 'HTTP_BAD_REQUEST', message: 'The request is not valid HTTP/1.1' },
  noHost: { statusCode: 400, code: 'HTTP_BAD_REQUEST', message: 'An HTTP/1.1 request needs a Host header' },
  expectationFailed: { statusCode: 417, code: 'HTTP_EXPECTATION_FAILED', message: 'Only Expect: 100-continue is supported' },
  requestTimeout: { statusCode: 408, code: 'HTTP_REQUEST_TIMEOUT', message: 'The request was not received in time' },
  headersTooLarge: { statusCode: 431, code: 'HTTP_HEADERS_TOO_LARGE', message: 'The request headers are too large' }
} as const satisfies Record<string, CodedAnswer>
