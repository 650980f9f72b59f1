// A WeChat code exchanged at most once: claimed in the store before WeChat is called. Logging in and
// stepping up spend wx.login() codes this way, H5 login an official account's authorization codes.
import { WxCodeUsedError } from './errors.js'
import { digest } from './ids.js'
import { alongGate, type Gate } from './rate-gate.js'
import type { SessionsDeps } from './sessions-deps.js'
import type { Code2SessionResult } from './wechat-client.js'

// A code is valid at WeChat for 5 minutes; remember accepted ones for longer than that.
export const USED_CODE_TTL_MS = 10 * 60 * 1000

/**
 * Runs `exchange` for a code of app `appid` unless the code was claimed before: then `UsedError`,
 * and WeChat is not called. The claim is made for as long as an accepted code is remembered, so a
 * successful exchange writes nothing more (one store command less per login); a gateway that dies
 * mid-exchange leaves its code claimed, and the client gets a new code, as after any failed login.
 * A failed exchange forgets the claim (a transient failure may be tried again with the same code),
 * unless it failed with `UsedError` (WeChat itself says the code was used).
 */
export function createCodeClaims ({ store }: Pick<SessionsDeps, 'store'>, UsedError: new () => Error) {
  /**
   * `gate`, the request's rate limit, is counted in the same round trip as the claim
   * (http/counted-with-next.ts): over the budget, the claim is released and WeChat is not called.
   */
  return async function once<T> (appid: string, code: string, exchange: () => Promise<T>, gate?: Gate): Promise<T> {
    const codeId = digest(`${appid}\u0000${code}`)
    const claim = await alongGate(gate, store.claimCode(codeId, USED_CODE_TTL_MS), (made) => {
      if (made === 'claimed') store.settleCode(codeId, false, USED_CODE_TTL_MS).catch(() => {})
    })
    if (claim !== 'claimed') throw new UsedError()
    try {
      return await exchange()
    } catch (err) {
      await store.settleCode(codeId, err instanceof UsedError, USED_CODE_TTL_MS).catch(() => {})
      throw err
    }
  }
}

/**
 * Spends a code of app `appid` without exchanging it, as a used code is remembered: shown with a
 * request refused for another reason (an H5 state of another browser), it is redeemed by no one after.
 */
export async function spendCode ({ store }: Pick<SessionsDeps, 'store'>, appid: string, code: string): Promise<void> {
  await store.claimCode(digest(`${appid}\u0000${code}`), USED_CODE_TTL_MS)
}

export function createCodeExchange ({ store, wechat }: Pick<SessionsDeps, 'store' | 'wechat'>) {
  const once = createCodeClaims({ store }, WxCodeUsedError)
  /** Exchanges a wx.login() code with WeChat (jscode2session): a replay, or a concurrent duplicate, never reaches WeChat. */
  return async function exchange (appid: string, code: string, gate?: Gate): Promise<Code2SessionResult> {
    return await once(appid, code, async () => await wechat.code2Session(code, appid), gate)
  }
}

export type CodeExchange = ReturnType<typeof createCodeExchange>
