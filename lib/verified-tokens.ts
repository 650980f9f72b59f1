// The access tokens this gateway has verified, remembered until they expire: a client presents the
// same token for its whole life, so a repeat costs a lookup and the expiry check, not a signature.
//
// Only successes are kept (fast-jwt's own cache also stores failures: junk tokens would fill it with
// attacker data), so every entry is a token this gateway signed; the oldest entry goes first. Not
// hashed with SHA-256 to be looked up (that cost ~20 % of throughput): an entry is found by the
// token's last characters (the end of its signature), then compared whole. A Map hashes the string
// it looks up, and a whole token is some 400 characters, new on every request. The Authorization
// header a token came in is kept too: the same header again needs neither the Bearer pattern nor
// the token cut out of it (a slice of the header: it holds no copy); a header that ends in spaces
// never finds it so, and takes the pattern each time (BENCHMARKS.md, "The authenticated request's own
// work").
import { AuthTokenExpiredError, AuthTokenInvalidError } from './errors.js'
import { remember } from './bounded-memo.js'
import type { AccessClaims } from './schemas.js'

type Claims = Readonly<Record<string, unknown>>

/**
 * A verified token, the Authorization header it last came in (none when verified alone), its claims,
 * and what the caller derives from them once (`derive`).
 */
export interface Known<D> { readonly token: string, header: string | undefined, readonly claims: Claims, readonly derived: D }

// How many of a token's last characters find it among the remembered: 72 bits of its signature. Fewer
// than 13, so that the slice is a string of its own, which V8 hashes and compares on its fast path (a
// longer one is a view of the header, compared character by character through its parent).
const TAIL = 12

/** How many verified tokens a gateway remembers by default (AccessTokensOptions.cacheSize). */
export const TOKENS_REMEMBERED = 10_000
const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+) *$/i

export interface VerifiedTokensOptions<D> {
  /** How many tokens are remembered. */
  size: number
  /** Clock in ms. */
  now: () => number
  /** The frozen claims of a token not remembered, once verified; throws AUTH_TOKEN_* errors. */
  verifyNew: (token: string) => Claims
  /** What is derived from a token's claims once, kept with them (the session they name). */
  derive: (claims: Claims) => D
}

/**
 * A copy of remembered claims. A caller that changes the claims (a host writing to
 * request.wechatAuthUser) must not change what the next request sees: the remembered object is
 * shared, and deep-frozen.
 */
export const copyOf = (known: Known<unknown>): AccessClaims => ({ ...known.claims }) as AccessClaims

export function verifiedTokens<D> ({ size, now, verifyNew, derive }: VerifiedTokensOptions<D>) {
  const verified = new Map<string, Known<D>>()

  /** `known`, unless it expired (then forgotten). */
  function unexpired (known: Known<D>): Known<D> {
    if ((known.claims.exp as number) * 1000 <= now()) {
      verified.delete(known.token.slice(-TAIL))
      throw new AuthTokenExpiredError()
    }
    return known
  }

  /** `token`, verified now or before; `header`, the Authorization header it came in. */
  function knownOf (token: string, header?: string): Known<D> {
    const tail = token.slice(-TAIL)
    const known = verified.get(tail)
    if (known?.token === token) {
      if (header !== undefined) known.header = header
      return unexpired(known)
    }
    const claims = verifyNew(token)
    return remember(verified, tail, { token, header, claims, derived: derive(claims) }, size)
  }

  return {
    /** The claims of `token`, verified now or before. */
    verify: (token: string): AccessClaims => copyOf(knownOf(token)),

    /** The bearer token in an Authorization header: the header seen before, or its token verified. */
    bearer (authorization: string): Known<D> {
      const known = verified.get(authorization.slice(-TAIL))
      if (known !== undefined && known.header === authorization) return unexpired(known)
      const match = BEARER.exec(authorization)
      if (match === null) throw new AuthTokenInvalidError()
      return knownOf(match[1] as string, authorization)
    },

    get size (): number { return verified.size }
  }
}
