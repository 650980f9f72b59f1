// A WeChat server stand-in for development and tests: a real HTTP server that honours the contract in
// ../shared/wechat-api.md, including its traps (text/plain JSON, no errcode on a successful
// jscode2session). It serves one mini program, or several (`apps`), each with its own secret, and the
// web authorization (H5 login) of one official account, or several (`officialAccounts`).
// What it knows: ./state.ts. The endpoints and the special users that trigger WeChat's errors:
// ./endpoints.ts. The HTTP side (body cap, 404, 500): ./server.ts.
import { endpoints, type EndpointOptions } from './endpoints.js'
import { listen, type ListenOptions, type SimulatorCall } from './server.js'
import { createState, phoneOf, type EncryptedData, type PhoneNumber, type SimulatorApp, type StateOptions } from './state.js'

export { DEV_APPID, type EncryptedData, type PhoneNumber, type SimulatorApp } from './state.js'
export { DEV_OA_APPID, DEV_OA_SECRET } from './oauth.js'
export type { SimulatorCall } from './server.js'

export interface SimulatorOptions extends StateOptions, EndpointOptions, ListenOptions {}

export interface Simulator {
  url: string
  /** The first (default) mini program's credentials. */
  appid: string
  secret: string
  apps: SimulatorApp[]
  /** The default official account (H5 login) and every one served. */
  officialAccount: SimulatorApp
  officialAccounts: SimulatorApp[]
  /** Every call received, in order; tests assert on it. */
  calls: SimulatorCall[]
  /** The openid a user gets in a mini program (default: the first), or an official account, as the simulator computes it. */
  openidOf: (user: string, appid?: string) => string
  /** The same in every mini program and official account, as with an open-platform account. */
  unionidOf: (user: string) => string
  /** The last session_key issued to a user in a mini program (default: the first). */
  sessionKeyOf: (user: string, appid?: string) => string | undefined
  phoneOf: (user: string) => PhoneNumber
  /** The last access_token issued for a mini program, even if expired; undefined once invalidated. */
  accessTokenOf: (appid?: string) => string | undefined
  /** Revokes every token of a mini program at once: later calls with them get 40001. */
  invalidateAccessToken: (appid?: string) => void
  /** What POST /dev/encrypt answers; throws when the user has no session_key in that mini program. */
  encryptFor: (user: string, data: Record<string, unknown>, appid?: string) => EncryptedData
  close: () => Promise<void>
}

export async function startSimulator (opts: SimulatorOptions = {}): Promise<Simulator> {
  const state = createState(opts)
  const { first, tokens } = state
  const server = await listen(endpoints(state, opts), opts)
  return {
    url: server.url,
    appid: first.appid,
    secret: first.secret,
    apps: state.apps.map((a) => ({ ...a })),
    officialAccount: { ...state.oauth.accounts[0] as SimulatorApp },
    officialAccounts: state.oauth.accounts.map((a) => ({ ...a })),
    calls: server.calls,
    openidOf: state.openidOf,
    unionidOf: state.unionidOf,
    sessionKeyOf: state.sessionKeyOf,
    phoneOf,
    accessTokenOf: (appid = first.appid) => tokens.currentOf(appid),
    invalidateAccessToken: (appid = first.appid) => { tokens.invalidate(appid) },
    encryptFor: state.encryptFor,
    close: server.close
  }
}
