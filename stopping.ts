// How the standalone gateway is asked to stop, whether it runs alone or as a worker (workers.ts):
// SIGTERM, SIGINT or SIGHUP, or, in a worker, the primary's message. The first asks for a drain; a
// second signal means "now" (exit 1), as close-with-grace has it. The primary's message is not a
// signal: a whole process group signalled (Ctrl-C, systemd's stop) reaches each worker once from the
// group and once more from the primary, in either order, and must drain once, not exit at the second.
import closeWithGrace from 'close-with-grace'

/** The signals that ask for a drain; close-with-grace keeps the others (SIGQUIT, SIGUSR2, errors). */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const

/** What the primary sends a worker to stop it (workers.ts). */
export const STOP_MESSAGE = { type: 'wechat-auth:stop' } as const

/**
 * Runs `close` once at the first stop signal or the primary's message, within `delayMs` (then exit 1,
 * as a failure), and exits 0 after it, or 1 if it threw; a second signal exits 1 at once. An uncaught
 * error closes too (close-with-grace). `close` is told why: a signal's name, 'the primary', or the error.
 */
export function stopGracefully (opts: { delayMs: number, logger: { error: (msg: string) => void } }, close: (why: { reason?: string, err?: Error }) => Promise<void>): void {
  let reason: string | undefined
  let closing = false
  const grace = closeWithGrace({ delay: opts.delayMs, logger: opts.logger, skip: [...STOP_SIGNALS] }, async ({ err }) => {
    closing = true
    await close(err !== undefined ? { err } : { reason })
  })
  const ask = (why: string): void => {
    if (closing) return
    reason = why
    grace.close() // it exits the process itself: 0, or 1 on a failure
  }
  onStopSignals(ask, (signal) => {
    opts.logger.error(`second ${signal}, exiting`)
    process.exit(1)
  })
  process.on('message', (message: { type?: unknown } | null) => { if (message?.type === STOP_MESSAGE.type) ask('the primary') })
}

/** Calls `first` at the first stop signal, `second` at any after it. */
export function onStopSignals (first: (signal: string) => void, second: (signal: string) => void): void {
  let signals = 0
  for (const signal of STOP_SIGNALS) process.on(signal, () => { if (++signals === 1) first(signal); else second(signal) })
}
