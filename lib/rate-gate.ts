// A request's rate limit as the flows see it: a promise counted in the store alongside the flow's
// first store command, so both go in one round trip (http/counted-with-next.ts counts it).
/** Resolves when the request is within its budget; rejects with 429 RATE_LIMITED (errors.ts; or the store's 503) when not. */
export type Gate = Promise<void>

/**
 * `op`'s result once `gate` allows it; `gate`'s rejection otherwise, after `undo` got what `op` did
 * (when it succeeded) so that nothing the request was refused for stays done.
 */
export async function alongGate<T> (gate: Gate | undefined, op: Promise<T>, undo?: (done: T) => void): Promise<T> {
  // Both are waited for, `op` first; a refusal of the gate wins over op's own failure. Promise.allSettled
  // cost every refresh and login its result objects. The gate is marked handled first: one that is
  // refused while `op` runs must not be an unhandled rejection (http/counted-with-next.ts's are already).
  gate?.catch(() => {})
  let done: T
  try {
    done = await op
  } catch (err) {
    await gate
    throw err
  }
  try {
    await gate
  } catch (refused) {
    undo?.(done)
    throw refused
  }
  return done
}
