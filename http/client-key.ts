// A client's rate-limit key: its IP as @fastify/rate-limit normalizes it (an IPv4-mapped IPv6 address
// as IPv4, an IPv6 address as its /56, lower case), so that the gateway's own counts and the plugin's
// share their keys.
//
// normalizeIP tests every address against an IPv6 regular expression and lower-cases it: about 1.5 %
// of a refresh's CPU samples (perf, issue 15), for the same few addresses again and again (one per
// connection behind a proxy, or the proxy's). The recent ones are remembered.
import { normalizeIP } from '@fastify/rate-limit'

/** How many addresses are remembered; past it the oldest goes. Each costs two short strings. */
export const ADDRESSES_REMEMBERED = 10_000

const keys = new Map<string, string>()

/**
 * The key of the client at `ip`. A request whose connection was reset has no address left
 * (`request.ip` undefined): it still gets a key, '' (its answer will not be read).
 */
export function clientKey (ip: string | undefined): string {
  const address = ip ?? ''
  let key = keys.get(address)
  if (key === undefined) {
    key = normalizeIP(address)
    if (keys.size >= ADDRESSES_REMEMBERED) keys.delete(keys.keys().next().value as string)
    keys.set(address, key)
  }
  return key
}
