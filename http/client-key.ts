// A client's rate-limit key: its IP as @fastify/rate-limit normalizes it (an IPv4-mapped IPv6 address
// as IPv4, an IPv6 address as its /56, lower case), so that the gateway's own counts and the plugin's
// share their keys.
//
// normalizeIP tests every address against an IPv6 regular expression and lower-cases it: about 1.5 %
// of a refresh's CPU samples (perf, issue 15), for the same few addresses again and again (one per
// connection behind a proxy, or the proxy's). The recent ones are remembered, as copies: behind a
// proxy, `request.ip` is cut out of the X-Forwarded-For header, and V8 keeps a cut of 13 characters or
// more as a view of the whole header (up to 16 KiB, its padding chosen by the client). What no
// address can be (longer than an IPv6 address with a zone) is never remembered.
import { normalizeIP } from '@fastify/rate-limit'
import { remember } from '../lib/bounded-memo.js'

/** How many addresses are remembered; past it the oldest goes. Each costs two strings of at most ADDRESS_CHARS. */
export const ADDRESSES_REMEMBERED = 10_000
/** The longest address remembered: an IPv6 address in its longest text form, with room for a zone. */
export const ADDRESS_CHARS = 64

const keys = new Map<string, string>()

/** How many addresses are remembered now (tests). */
export const addressesRemembered = (): number => keys.size

/** `text` in memory of its own: not a view of a longer string it was cut from. */
const ownCopy = (text: string): string => Buffer.from(text, 'utf8').toString('utf8')

/**
 * The key of the client at `ip`. A request whose connection was reset has no address left
 * (`request.ip` undefined): it still gets a key, '' (its answer will not be read).
 */
export function clientKey (ip: string | undefined): string {
  const address = ip ?? ''
  let key = keys.get(address)
  if (key === undefined) {
    key = normalizeIP(address)
    if (address.length > ADDRESS_CHARS) return key
    const own = ownCopy(address)
    key = remember(keys, own, key === address ? own : ownCopy(key), ADDRESSES_REMEMBERED)
  }
  return key
}
