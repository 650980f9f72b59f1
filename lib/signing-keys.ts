// Asymmetric access tokens: ES256 or EdDSA with a private key whose public half, and those of the
// keys before it, services behind the gateway fetch as a JWKS to verify tokens without a shared
// secret. Each key is named (kid) by its RFC 7638 thumbprint: the same key has the same kid on every
// instance, with nothing to configure. HS256 with JWT_SECRET (lib/jwt-signer.ts) stays the default.
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto'
import { createVerifier } from 'fast-jwt'
import { claimsJsonOf, createHs256Signer, type TokenSigner } from './jwt-signer.js'

export type AsymmetricAlgorithm = 'ES256' | 'EdDSA'

/** A public key as a JWKS lists it. */
export interface PublicJwk {
  kty: string
  crv: string
  x: string
  y?: string
  kid: string
  alg: AsymmetricAlgorithm
  use: 'sig'
}

// The key type each algorithm signs with.
const CURVE: Record<AsymmetricAlgorithm, { type: string, crv: string }> = {
  ES256: { type: 'ec', crv: 'P-256' },
  EdDSA: { type: 'ed25519', crv: 'Ed25519' }
}

// PEM in an environment variable often arrives with its newlines escaped.
const unescape = (text: string): string => text.includes('\n') ? text : text.replaceAll('\\n', '\n')

/** A private key from PEM (PKCS#8 or SEC1) or a JWK as JSON; throws a message that never holds the key. */
export function parsePrivateKey (text: string): KeyObject {
  try {
    const t = unescape(text).trim()
    return t.startsWith('{') ? createPrivateKey({ key: JSON.parse(t) as import('node:crypto').JsonWebKey, format: 'jwk' }) : createPrivateKey(t)
  } catch {
    throw new TypeError('not a private key in PEM or JWK form')
  }
}

/** The keys in `text`: PEM blocks one after another, a JWK, a JSON array of JWKs or a JWKS ({ keys }). */
function keySources (text: string): Array<string | object> {
  try {
    const t = unescape(text).trim()
    if (t.startsWith('{') || t.startsWith('[')) {
      const parsed = JSON.parse(t) as unknown
      const list: unknown = Array.isArray(parsed) ? parsed : 'keys' in (parsed as object) ? (parsed as { keys: unknown }).keys : [parsed]
      if (!Array.isArray(list)) throw new Error('keys is not a list')
      return list as object[]
    }
    const blocks = t.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? []
    if (blocks.length === 0) throw new Error('no PEM block')
    return blocks
  } catch {
    throw new TypeError('not public keys in PEM or JWK form')
  }
}

// A private PEM block (PKCS#8, SEC1, encrypted, OpenSSH) or a JWK with its private part: createPublicKey
// would take it and derive the public half, and a variable named "public" is kept less carefully.
const isPrivate = (source: string | object): boolean =>
  typeof source === 'string' ? /^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(source) : typeof source === 'object' && source !== null && 'd' in source

/**
 * Public keys from PEM blocks one after another, a JWK, a JSON array of JWKs or a JWKS ({ keys }). A
 * private key is refused, named by its place in the list, never shown.
 */
export function parsePublicKeys (text: string): KeyObject[] {
  const sources = keySources(text)
  return sources.map((source, i) => {
    if (isPrivate(source)) {
      throw new TypeError(`key ${i + 1} of ${sources.length} is a private key: give its public key only (openssl pkey -pubout; a JWK without "d")`)
    }
    try {
      return typeof source === 'string' ? createPublicKey(source) : createPublicKey({ key: source as import('node:crypto').JsonWebKey, format: 'jwk' })
    } catch {
      throw new TypeError('not public keys in PEM or JWK form')
    }
  })
}

/** Whether `key` (private or public) is of the kind `algorithm` signs with. */
export function fitsAlgorithm (key: KeyObject, algorithm: AsymmetricAlgorithm): boolean {
  const want = CURVE[algorithm]
  if (key.asymmetricKeyType !== want.type) return false
  return want.type !== 'ec' || key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
}

/** The public JWK of a key, named by its RFC 7638 thumbprint. */
export function publicJwk (key: KeyObject, algorithm: AsymmetricAlgorithm): PublicJwk {
  const jwk = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'jwk' }) as { kty: string, crv: string, x: string, y?: string }
  // RFC 7638: the required members, in lexicographic order, no whitespace.
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
  const kid = createHash('sha256').update(JSON.stringify(members)).digest('base64url')
  return { ...members, kid, alg: algorithm, use: 'sig' }
}

/** Signs `payload` with iss, iat and exp added after it, as the HS256 signer does, with `kid` in the header. */
export function createAsymmetricSigner (opts: { key: KeyObject, algorithm: AsymmetricAlgorithm, kid: string, iss: string, ttlSec: number, now?: () => number }): TokenSigner {
  const header = Buffer.from(JSON.stringify({ alg: opts.algorithm, typ: 'JWT', kid: opts.kid })).toString('base64url')
  const now = opts.now ?? Date.now
  const { ttlSec, key } = opts
  const claimsJson = claimsJsonOf(opts.iss)
  const digest = opts.algorithm === 'ES256' ? 'sha256' : null
  return (payload, ttl = ttlSec) => {
    const iat = Math.floor(now() / 1000)
    const body = `${header}.${Buffer.from(claimsJson(payload, iat, iat + ttl)).toString('base64url')}`
    // JOSE wants an ECDSA signature as r || s, not DER.
    return `${body}.${sign(digest, Buffer.from(body), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
  }
}

/** The `kid` of a token's header, without verifying anything; undefined when it has none. */
export function kidOf (token: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8')) as { kid?: unknown }
    return typeof header.kid === 'string' ? header.kid : undefined
  } catch {
    return undefined
  }
}

const publicPem = (key: KeyObject): string => (key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'pem' }).toString()

/**
 * The signer of access tokens and the verifier a token needs: HS256 with `secret`, or with `signing`
 * the asymmetric key (its kid in the header) and one verifier per key, found by the header's kid.
 */
export function tokenKeys (opts: {
  secret: string
  issuer: string
  ttlSec: number
  appids: readonly string[]
  now: () => number
  signing?: { algorithm: AsymmetricAlgorithm, privateKey: KeyObject, previousPublicKeys?: KeyObject[] }
}) {
  const verifierOf = (key: string, algorithm: string) => createVerifier({
    key,
    algorithms: [algorithm as 'HS256'],
    allowedIss: opts.issuer,
    allowedAud: [...opts.appids],
    // fast-jwt skips allowedIss/allowedAud for a token without the claim: require them.
    requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp', 'iss', 'aud'],
    // Expiry is checked by the caller, by the clock tokens are signed with.
    ignoreExpiration: true
  })
  const { signing, issuer: iss, ttlSec, now } = opts
  if (signing === undefined) {
    const hs256 = verifierOf(opts.secret, 'HS256')
    return { signToken: createHs256Signer({ secret: opts.secret, iss, ttlSec, now }), verifierFor: (_token: string) => hs256, jwks: [] as PublicJwk[] }
  }
  // One entry per kid: the signing key's own public key left among the previous ones (step 1 of a
  // rotation publishes it there), or a key listed twice, would put a kid twice in the JWKS, and
  // verifiers (jose) refuse a token whose kid matches several keys.
  const all = [signing.privateKey, ...signing.previousPublicKeys ?? []].map((k) => ({ k, jwk: publicJwk(k, signing.algorithm) }))
  const unique = all.filter((e, i) => all.findIndex((o) => o.jwk.kid === e.jwk.kid) === i)
  const keys = unique.map((e) => e.k)
  const jwks = unique.map((e) => e.jwk)
  const byKid = new Map(jwks.map((jwk, i) => [jwk.kid, verifierOf(publicPem(keys[i] as KeyObject), jwk.alg)]))
  return {
    signToken: createAsymmetricSigner({ key: signing.privateKey, algorithm: signing.algorithm, kid: (jwks[0] as PublicJwk).kid, iss, ttlSec, now }),
    verifierFor: (token: string) => byKid.get(kidOf(token) ?? ''),
    jwks
  }
}
