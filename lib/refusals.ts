// The standalone server's answers before Fastify (http/server-options.ts): Node's parser and its
// timeouts meet these before a request exists, so they are answers, not error classes (lib/errors.ts).
// Their codes are known label values of the metrics (lib/metric-labels.ts). Not part of the package's
// exports: a host's server answers these itself.
/** An answer made by hand, outside Fastify's error handling. */
export interface CodedAnswer { statusCode: number, code: string, message: string }
/**
 * The longest path segment the standalone server's router takes: a user id (`sub`, up to 256
 * characters) in the admin API's paths, percent-encoded (up to 12 bytes a character). Fastify's
 * default of 100 answered a longer one with a 414 the admin API could not avoid.
 */
export const MAX_PARAM_LENGTH = 3072

export const BEFORE_FASTIFY = {
  badRequest: { statusCode: 400, code: 'HTTP_BAD_REQUEST', message: 'The request is not valid HTTP/1.1' },
  noHost: { statusCode: 400, code: 'HTTP_BAD_REQUEST', message: 'An HTTP/1.1 request needs a Host header' },
  expectationFailed: { statusCode: 417, code: 'HTTP_EXPECTATION_FAILED', message: 'Only Expect: 100-continue is supported' },
  requestTimeout: { statusCode: 408, code: 'HTTP_REQUEST_TIMEOUT', message: 'The request was not received in time' },
  headersTooLarge: { statusCode: 431, code: 'HTTP_HEADERS_TOO_LARGE', message: 'The request headers are too large' },
  connect: { statusCode: 405, code: 'HTTP_METHOD_NOT_ALLOWED', message: 'This server is not a proxy: CONNECT is refused' },
  // Answered by Fastify's router, before any route: neither echoes the path (it may be kilobytes, or hold a secret).
  uriTooLong: { statusCode: 414, code: 'HTTP_URI_TOO_LONG', message: `A path segment is longer than the server takes (${MAX_PARAM_LENGTH} characters)` },
  badUrl: { statusCode: 400, code: 'FST_ERR_BAD_URL', message: 'The URL does not decode (a malformed percent-encoding)' }
} as const satisfies Record<string, CodedAnswer>
