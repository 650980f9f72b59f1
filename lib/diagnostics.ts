// What the plain modules report about their calls to WeChat, on Node's diagnostics_channel: the
// metrics plugin (plugins/metrics.ts) subscribes, and so may a host's tracing. A channel without a
// subscriber costs one property read per call. Never a secret in a message: the endpoint's path,
// the mini program's appid, an outcome code and a duration only.
//
// The channels are per process: two gateways in one process, each with metrics, both count every
// call (the standalone server runs one per process).
import diagnostics from 'node:diagnostics_channel'
import { outcomeOf } from './audit.js'

/** One call to WeChat's server API, retry included, as the caller saw it. */
export interface WechatCallMessage {
  /** The endpoint's path ('/sns/jscode2session'), never its query. */
  endpoint: string
  /** 'ok', or the code of the error the call ended with (WX_CODE_INVALID, WX_TIMEOUT...). */
  outcome: string
  seconds: number
}

/** One access_token renewal that reached WeChat (a token taken from the store is not one). */
export interface TokenRenewalMessage {
  appid: string
  /** 'ok', or the code of the error the renewal ended with. */
  outcome: string
}

export const wechatCallChannel = diagnostics.channel('fastify-wechat-auth:wechat-call')
export const tokenRenewalChannel = diagnostics.channel('fastify-wechat-auth:access-token-renewal')

/** Runs one call to WeChat's `endpoint` and reports its outcome and duration (when anyone listens). */
export async function reportedCall<T> (endpoint: string, run: () => Promise<T>): Promise<T> {
  if (!wechatCallChannel.hasSubscribers) return await run()
  const start = performance.now()
  let outcome = 'ok'
  try {
    return await run()
  } catch (err) {
    outcome = outcomeOf(err)
    throw err
  } finally {
    wechatCallChannel.publish({ endpoint, outcome, seconds: (performance.now() - start) / 1000 } satisfies WechatCallMessage)
  }
}
