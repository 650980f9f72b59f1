// The access tokens this gateway has verified, remembered until they expire: a client presents the
// same token for its whole life, so a repeat costs a lookup and the expiry check, not a signature.
//
// Only successes are kept (fast-jwt's own cache also stores failures: junk tokens would fill it with
// attacker data), so every entry is a token this gateway signed; the oldest entry goes first. Not
// hashed with SHA-256 to be looked up (that cost ~20 % of throughput): an entry is found by the
// token's last characters (the end of its signature), then compared whole. A Map hashes the string
// it looks up, and a whole token is some 400 characters, new on every request. The Authorization
// header a token came in is kept too: the same header again needs neither the Bearer pattern nor
// the token cut out of it (a slice of the header: it holds no copy). Together, 1-2 µs of an
// authenticated request's 20 (BENCHMARKS.md, "The authenticated request's own work").
import { AuthTokenExpiredError, AuthTokenInvalidError } from './errors.js'
import type { AccessClaims } from './schemas.js'

type Claims = Readonly<Record<string, unknown>>

/** A verified token, and the Authorization header it last came in (none when verified alone). */
interface Known { readonly token: string, header: string | undefined, readonly claims: Claims }

// How many of a token's last characters find it among the remembered: 96 bits of its signature.
const TAIL = 16
const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+) *$/i

export interface VerifiedTokensOptions {
  /** How many tokens are remembered. */
  size: number
  /** Clock in ms. */
  now: () => number
  /** The frozen claims of a token not remembered, once verified; throws AUTH_TOKEN_* errors. */
  verifyNew: (token: string) => Claims
}

export function verifiedTokens ({ size, now, verifyNew }: VerifiedTokensOptions) {
  const verified = new Map<string, Known>()

  /**
   * A copy of remembered claims, unless they expired. A caller that changes the claims (a host writing
   * to request.wechatAuthUser) must not change what the next request sees: the remembered object is
   * shared, and deep-frozen.
   */
  function copyOf (known: Known): AccessClaims {
    if ((known.claims.exp as number) * 1000 <= now()) {
      verified.delete(known.token.slice(-TAIL))
      throw new AuthTokenExpiredError()
    }
    return { ...known.claims } as AccessClaims
  }

  /** The claims of `token`, verified now or before; `header`, the Authorization header it came in. */
  function verify (token: string, header?: string): AccessClaims {
    const tail = token.slice(-TAIL)
    const known = verified.get(tail)
    if (known?.token === token) {
      if (header !== undefined) known.header = header
      return copyOf(known)
    }
    const claims = verifyNew(token)
    if (verified.size >= size) verified.delete(verified.keys().next().value as string)
    verified.set(tail, { token, header, claims })
    return { ...claims } as AccessClaims
  }

  return {
    verify,

    /** The claims of the bearer token in an Authorization header: the header seen before, or its token verified. */
    claimsOf (authorization: string): AccessClaims {
      const known = verified.get(authorization.slice(-TAIL))
      if (known !== undefined && known.header === authorization) return copyOf(known)
      const match = BEARER.exec(authorization)
      if (match === null) throw new AuthTokenInvalidError()
      return verify(match[1] as string, authorization)
    },

    get size (): number { return verified.size }
  }
}
