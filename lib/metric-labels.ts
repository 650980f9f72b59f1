// The bounds of the metrics' labels (lib/metrics.ts): a label's values are short identifiers, the
// gateway's and Fastify's codes always themselves, and at most MAX_VALUES others per label of a metric;
// anything else is 'other', so that no client can grow a label without bound.
import * as errors from './errors.js'
import { BEFORE_FASTIFY } from './refusals.js'

// A label value is a short identifier; anything else is 'other'.
const SAFE_VALUE = /^[A-Za-z0-9_.:/-]{1,64}$/
/**
 * A route template, as Fastify gives the matched route's (never the client's path): printable ASCII,
 * for a wildcard (`/files/*`) or a parameter's pattern (`/items/:id(^\\d+)`) of a host's route.
 */
export const ROUTE_TEMPLATE = /^[\x21-\x7e]{1,128}$/
export const MAX_VALUES = 64
const OTHER = 'other'

/**
 * The gateway's own codes, Fastify's, and the outcome names: always their own value, however many
 * others a label has seen (a code that first comes weeks after boot, STORE_UNAVAILABLE say, must not
 * be 'other' because a host's routes or a scanner used up the set first).
 */
const KNOWN_VALUES = new Set(['ok', 'error', 'rotated', 'grace_retry', 'reuse_detected', 'invalid',
  'SERVER_OVERLOADED', // load shedding's (http/load-shedding.ts), answered without an error class
  ...Object.values(BEFORE_FASTIFY).map((answer) => answer.code),
  ...Object.values(errors).flatMap((E) => {
    try {
      const code = (new (E as new () => { code?: unknown })()).code
      return typeof code === 'string' ? [code] : []
    } catch {
      return []
    }
  })])
const FASTIFY_CODE = /^FST_[A-Z0-9_]{1,60}$/

/** Keeps one label's values to a bounded set: the known ones, and the first `max` others of the shape `safe`. */
export function boundedLabel (max = MAX_VALUES, safe = SAFE_VALUE): (value: string) => string {
  const seen = new Set<string>()
  return (value) => {
    if (seen.has(value) || KNOWN_VALUES.has(value) || FASTIFY_CODE.test(value)) return value
    if (seen.size >= max || !safe.test(value)) return OTHER
    seen.add(value)
    return value
  }
}
