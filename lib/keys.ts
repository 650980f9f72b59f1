// Names of every key the store writes. One user's keys share the hash tag `{tag}`.
export interface KeyNames {
  session: (tag: string, sid: string) => string
  /** Prefix of a user's session keys, for scripts that walk the user's index. */
  sessionPrefix: (tag: string) => string
  userIndex: (tag: string) => string
  blacklist: (tag: string, jti: string) => string
  code: (codeId: string) => string
  rateLimit: string
}

export function keyNames (prefix: string): KeyNames {
  return {
    session: (tag, sid) => `${prefix}{${tag}}:s:${sid}`,
    sessionPrefix: (tag) => `${prefix}{${tag}}:s:`,
    userIndex: (tag) => `${prefix}{${tag}}:u`,
    blacklist: (tag, jti) => `${prefix}{${tag}}:b:${jti}`,
    code: (codeId) => `${prefix}c:${codeId}`,
    rateLimit: `${prefix}rl:`
  }
}
