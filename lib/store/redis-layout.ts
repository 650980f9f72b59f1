// Names of every key the store writes. A user's sessions live in one key, under the hash tag `{tag}`.
export interface KeyNames {
  /** One hash per user: a field per session (its id), and `b:<jti>` per blacklisted token. */
  user: (tag: string) => string
  code: (codeId: string) => string
  rateLimit: string
  /** A shared credential (an appid's access_token) and the lock of its renewal. */
  credential: (name: string) => string
  credentialLock: (name: string) => string
}

/** The hash field of a blacklisted access token. */
export const blacklistField = (jti: string): string => `b:${jti}`

export function keyNames (prefix: string): KeyNames {
  return {
    user: (tag) => `${prefix}{${tag}}`,
    code: (codeId) => `${prefix}c:${codeId}`,
    rateLimit: `${prefix}rl:`,
    credential: (name) => `${prefix}at:{${name}}`,
    credentialLock: (name) => `${prefix}atl:{${name}}`
  }
}
