// The standalone gateway as `npm start` runs it (dist/server.js, built by `npm test` first), in a
// child process the tests read and signal: server.test.ts, workers.test.ts, stopping.test.ts.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { until } from './redis-deployments.js'

export const entry = fileURLToPath(new URL('../dist/server.js', import.meta.url))
/** A test's `skip` while dist/ is not built. */
export const unbuilt = (file = entry): false | string => existsSync(file) ? false : 'run `npm run build` first (npm test does)'

export interface Running {
  pid: number
  /** stdout and stderr so far. */
  output: () => string
  errors: () => string
  /** The exit code (null when a signal ended it). */
  exited: Promise<number | null>
  kill: (signal?: NodeJS.Signals) => void
  /** Waits until `done(output)` holds, failing with `what` after `ms`. */
  until: (done: (output: string) => boolean, what: string, ms?: number) => Promise<void>
}

/** Runs `file` with only `env` (and PATH); `detached`: in a process group of its own (signalled as a whole by killing -pid). */
export function run (env: Record<string, string>, file = entry, opts: { detached?: boolean } = {}): Running {
  const child = spawn(process.execPath, [file], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached === true })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); err += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  // Its output is all read once its pipes close (after 'exit').
  let closed = false
  child.once('close', () => { closed = true })
  // redis-deployments.ts's poll, its failure with what the process said last; at once when the
  // process has ended (a crash at boot) without saying what was awaited.
  const untilOutput = async (done: (output: string) => boolean, what: string, ms = 10_000): Promise<void> => {
    await until(async () => done(out), what, ms, 20, () => closed).catch((failed: Error) => { throw new Error(`${failed.message}; output:\n${out.slice(-2000)}`) })
  }
  return { pid: child.pid ?? 0, output: () => out, errors: () => err, exited, kill: (signal = 'SIGTERM') => { child.kill(signal) }, until: untilOutput }
}

/** How many lines of `output` hold `text`. */
export const count = (output: string, text: string): number => output.split('\n').filter((line) => line.includes(text)).length
