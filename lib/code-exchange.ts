// A wx.login() code exchanged with WeChat at most once: claimed in the store before WeChat is
// called. Logging in and stepping up both spend codes this way.
import { WxCodeUsedError } from './errors.js'
import { digest } from './ids.js'
import type { SessionsDeps } from './sessions-deps.js'
import type { Code2SessionResult } from './wechat-client.js'

// A code is valid at WeChat for 5 minutes; remember accepted ones for longer than that.
export const USED_CODE_TTL_MS = 10 * 60 * 1000

export function createCodeExchange ({ store, wechat }: Pick<SessionsDeps, 'store' | 'wechat'>) {
  /**
   * Exchanges a code with WeChat. A replay (or a concurrent duplicate) never reaches WeChat. The
   * claim is made for as long as an accepted code is remembered, so a successful exchange writes
   * nothing more (one store command less per login); a gateway that dies mid-exchange leaves its
   * code claimed, and the client calls wx.login() again, as after any failed login.
   */
  return async function exchange (appid: string, code: string): Promise<Code2SessionResult> {
    const codeId = digest(`${appid}\u0000${code}`)
    const claim = await store.claimCode(codeId, USED_CODE_TTL_MS)
    if (claim !== 'claimed') throw new WxCodeUsedError()
    try {
      return await wechat.code2Session(code, appid)
    } catch (err) {
      // Forget the claim so a code whose exchange failed transiently can be tried again;
      // remember it when WeChat itself says it is used.
      await store.settleCode(codeId, err instanceof WxCodeUsedError, USED_CODE_TTL_MS).catch(() => {})
      throw err
    }
  }
}

export type CodeExchange = ReturnType<typeof createCodeExchange>
