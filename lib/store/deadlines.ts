// Deadlines for store operations without a timer per operation (a timer each cost ~8% of
// throughput): pending operations are swept by one interval, so a deadline fires within
// timeoutMs + timeoutMs / 10.
import { setTimeout as sleep } from 'node:timers/promises'
import { StoreUnavailableError } from '../errors.js'

export function createDeadlines (timeoutMs: number) {
  const pending = new Set<{ startedAt: number, fail: (err: Error) => void }>()
  const sweeper = setInterval(() => {
    const now = Date.now()
    for (const p of pending) {
      if (now - p.startedAt >= timeoutMs) {
        pending.delete(p)
        p.fail(new StoreUnavailableError({ cause: new Error(`redis operation exceeded ${timeoutMs} ms`) }))
      }
    }
  }, Math.max(5, Math.floor(timeoutMs / 10)))
  sweeper.unref()

  /**
   * Runs a store operation within the deadline. Every failure becomes STORE_UNAVAILABLE with a
   * cause that keeps only the message: client errors may carry the command and its arguments
   * (ioredis attaches them; session_key is among them), and a logged error must not. `onLate`
   * gets the result of an operation that completed after its deadline had already failed it.
   */
  function guard<T> (op: () => Promise<T>, onLate?: (value: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = { startedAt: Date.now(), fail: reject }
      const failed = (err: Error): void => {
        if (pending.delete(entry)) reject(new StoreUnavailableError({ cause: new Error(`${err.name}: ${err.message}`) }))
      }
      pending.add(entry)
      let running: Promise<T>
      try {
        running = op() // an op that throws before its first await (its arguments) fails like one that rejects
      } catch (err) {
        failed(err as Error)
        return
      }
      running.then((value) => {
        if (pending.delete(entry)) resolve(value)
        // The caller was told STORE_UNAVAILABLE, "nothing was changed": undo what still happened.
        else onLate?.(value)
      }, failed)
    })
  }

  /** Waits until no operation is pending or the deadline of the last one has passed, then stops sweeping. */
  async function drain (): Promise<void> {
    const until = Date.now() + timeoutMs
    while (pending.size > 0 && Date.now() < until) await sleep(5)
  }

  return { guard, drain, stop: () => { clearInterval(sweeper) } }
}
