// A warning that comes at most so often, however often its cause does: the log says how many times
// since the last line, with the latest occurrence's details (replicas that fell short, failed sweeps).

/**
 * Calls `warn` at most every `everyMs` (the first time at once) with how many occurrences (`weight`
 * each) came since its last call, and the latest occurrence's arguments.
 */
export function throttledWarning<A extends unknown[]> (everyMs: number, warn: (count: number, ...args: A) => void): (weight: number, ...args: A) => void {
  let last = -Infinity
  let count = 0
  return (weight, ...args) => {
    count += weight
    const now = Date.now()
    if (now - last < everyMs) return
    warn(count, ...args)
    last = now
    count = 0
  }
}
