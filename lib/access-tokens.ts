// The gateway's own access tokens: HS256 JWTs signed here, verified (signature, algorithm, iss,
// aud, expiry) by fast-jwt, the library @fastify/jwt wraps, and checked against the session store
// for revocation. No Fastify: the jwt plugin decorates what this builds.
import {
  ArgumentError, AuthTokenExpiredError, AuthTokenInvalidError, AuthTokenMissingError, AuthTokenRevokedError, sessionEnded
} from './errors.js'
import { newJti, userTag } from './ids.js'
import { tokenKeys, type AsymmetricAlgorithm, type PublicJwk } from './signing-keys.js'
import { TOKENS_REMEMBERED, copyOf, verifiedTokens } from './verified-tokens.js'
import type { KeyObject } from 'node:crypto'
import type { AccessClaims } from './schemas.js'
import type { LiveAccess, SessionsStore } from './store/types.js'

/**
 * An authenticated caller: the token's claims, and the user's roles, permissions and service bans
 * and the session's last step-up as the store holds them now (read in the same round trip as the
 * revocation check: a change applies to the next request on every instance).
 */
export type AuthUser = AccessClaims & Readonly<Pick<LiveAccess, 'roles' | 'permissions' | 'steppedUpAt' | 'serviceBans'>>

/** What the gateway puts in an access token besides iat/exp/iss/aud/jti. */
export interface AccessTokenInput {
  /** The mini program's appid: the token's audience. */
  aud: string
  sub: string
  openid: string
  unionid?: string
  sid: string
  /**
   * The session generation the token is issued at, by a refresh: its `sgen` claim. Checking the
   * token marks that rotation delivered (a retry of its predecessor is reuse from then on).
   */
  generation?: number
  claims?: Record<string, unknown>
}

/**
 * The claim of the session generation an access token was issued at. The gateway's, like `sid`: a
 * host claim of that name never reaches a token.
 */
export const GENERATION_CLAIM = 'sgen'

export interface AccessTokensOptions {
  secret: string
  issuer: string
  ttlSec: number
  /** The mini programs served: a token's audience must be one of them. */
  appids: readonly string[]
  store: Pick<SessionsStore, 'checkAccess'>
  /** Clock in ms (tests). */
  now?: () => number
  /** How many verified tokens are remembered (10,000 by default). */
  cacheSize?: number
  /**
   * Sign with ES256 or EdDSA instead of HS256 with `secret`: the private key, and the public keys of
   * the keys before it, whose tokens keep verifying (by their header's kid) until they expire.
   */
  signing?: { algorithm: AsymmetricAlgorithm, privateKey: KeyObject, previousPublicKeys?: KeyObject[] }
}

// Our tokens are well under 1 KiB; a longer one is not ours, and is refused before any work.
const MAX_TOKEN_LENGTH = 4096
const STRING_CLAIMS = ['sub', 'openid', 'sid', 'jti', 'aud', 'iss'] as const
// Tokens are signed with an iat from this clock and a lifetime of at most a day (ACCESS_TOKEN_TTL);
// another instance's clock may run a little ahead.
const MAX_LIFETIME_SEC = 86_400
const CLOCK_SKEW_SEC = 60

/**
 * Whether verified claims are ones this gateway could have signed: a valid signature on other
 * claims (a leaked key, a signer bug) must not reach a handler as a date it cannot format.
 */
function plausible (c: Record<string, unknown>, nowSec: number): boolean {
  if (STRING_CLAIMS.some((k) => typeof c[k] !== 'string')) return false
  if (c.unionid !== undefined && typeof c.unionid !== 'string') return false
  const generation = c[GENERATION_CLAIM]
  if (generation !== undefined && !(Number.isSafeInteger(generation) && (generation as number) > 0)) return false
  const { iat, exp } = c
  return Number.isSafeInteger(iat) && Number.isSafeInteger(exp) &&
    (iat as number) <= nowSec + CLOCK_SKEW_SEC && (exp as number) > (iat as number) && (exp as number) - (iat as number) <= MAX_LIFETIME_SEC
}

function deepFreeze (value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return
  Object.freeze(value)
  for (const v of Object.values(value)) deepFreeze(v)
}

/**
 * A token's claims: the host's (a stale `sgen` left out), then
 * ours, then the generation. Built without `delete`, which turns an object into a slow dictionary for
 * the signer's copy and its JSON: 6.6 -> 4.9 us a token (a loop of `sign` on this machine).
 */
function payloadOf (input: AccessTokenInput, jti: string): Record<string, unknown> {
  const { claims } = input
  const payload: Record<string, unknown> = {}
  if (claims !== undefined) for (const name of Object.keys(claims)) if (name !== GENERATION_CLAIM) payload[name] = claims[name]
  payload.sub = input.sub
  payload.openid = input.openid
  payload.sid = input.sid
  payload.jti = jti
  payload.aud = input.aud
  if (input.unionid !== undefined) payload.unionid = input.unionid
  if (input.generation !== undefined && input.generation > 0) payload[GENERATION_CLAIM] = input.generation
  return payload
}

export function createAccessTokens (opts: AccessTokensOptions) {
  const now = opts.now ?? Date.now
  const cacheSize = opts.cacheSize ?? TOKENS_REMEMBERED
  const { signToken, verifierFor, jwks } = tokenKeys({ ...opts, now })

  /**
   * A token for `input`, with the configured lifetime or `untilSec` when that is shorter: the time the
   * session has left (SESSION_MAX_AGE), so the token expires with it rather than outliving it (a token
   * of no session would be refused as revoked, and only once Redis noticed the session's key expire).
   */
  function sign (input: AccessTokenInput, untilSec?: number): { token: string, jti: string, expiresIn: number } {
    if (untilSec !== undefined && !(untilSec > 0)) throw new ArgumentError(`sign: untilSec must be a positive number of seconds, not ${String(untilSec)}`)
    const jti = newJti()
    const ttl = untilSec !== undefined && untilSec < opts.ttlSec ? Math.max(1, Math.floor(untilSec)) : opts.ttlSec
    return { token: signToken(payloadOf(input, jti), ttl), jti, expiresIn: ttl }
  }

  /** The claims of a token not remembered: verified, checked, frozen. */
  function verifyNew (token: string): Readonly<Record<string, unknown>> {
    if (token.length > MAX_TOKEN_LENGTH) throw new AuthTokenInvalidError()
    let fresh: Record<string, unknown>
    try {
      const verifier = verifierFor(token)
      if (verifier === undefined) throw new Error('no key of this kid')
      fresh = verifier(token) as Record<string, unknown>
    } catch {
      throw new AuthTokenInvalidError()
    }
    if (!plausible(fresh, Math.floor(now() / 1000))) throw new AuthTokenInvalidError()
    if ((fresh.exp as number) * 1000 <= now()) throw new AuthTokenExpiredError()
    deepFreeze(fresh)
    return fresh
  }
  // The session a token names, built once: the same object, and the same strings, at every check.
  const verified = verifiedTokens({ size: cacheSize, now, verifyNew, derive: (c) => Object.freeze({ tag: userTag(c.aud as string, c.sub as string), sid: c.sid as string }) })

  /** The caller of the bearer token in an Authorization header, once verified and not revoked. */
  async function authenticate (authorization: string | undefined): Promise<AuthUser> {
    if (authorization === undefined || authorization === '') throw new AuthTokenMissingError()
    const known = verified.bearer(authorization)
    const claims = copyOf(known)
    const status = await opts.store.checkAccess(known.derived, claims.jti, claims[GENERATION_CLAIM] as number | undefined)
    if (status === 'revoked') throw new AuthTokenRevokedError()
    if ('reason' in status) throw sessionEnded(status)
    const user = claims as AuthUser & Record<'roles' | 'permissions' | 'steppedUpAt' | 'serviceBans', unknown>
    user.roles = status.roles
    user.permissions = status.permissions
    user.steppedUpAt = status.steppedUpAt
    user.serviceBans = status.serviceBans
    return user
  }

  /** How many verified tokens are remembered (bounded by `cacheSize`). */
  const remembered = (): number => verified.size

  /** The public keys tokens are verified with (current first), as a JWKS; empty with HS256. */
  const publicKeys = (): { keys: PublicJwk[] } => ({ keys: jwks.map((k) => ({ ...k })) })

  /** Verifies signature, algorithm, iss, aud and expiry; throws AUTH_TOKEN_* errors. A fresh copy per call. */
  const verify = (token: string): AccessClaims => verified.verify(token)

  return { sign, verify, authenticate, remembered, publicKeys }
}

export type AccessTokens = ReturnType<typeof createAccessTokens>
