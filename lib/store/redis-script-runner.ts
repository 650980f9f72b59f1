// How the store's scripts reach Redis: as functions of one library (FCALL, redis-functions.ts) where
// the server has them, else by EVALSHA, then EVAL after a restart (NOSCRIPT).
//
// The library is loaded by need: a function Redis does not know (a first call, a restart without
// persistence, FUNCTION FLUSH, a Cluster node that never had it) runs that call by EVALSHA and loads
// the library meanwhile, one load at a time and a second apart at least; the calls after it find the
// function. A Redis that cannot run functions (before 7.0, FCALL or FUNCTION renamed away, an ACL that
// refuses them, a library it will not load) makes this runner send scripts by EVALSHA, and try
// functions again FUNCTIONS_RETRY_MS later (an upgrade, an ACL changed, a Cluster's last Redis 6
// master gone: each refuses or allows without a restart). A function refused because Redis takes no
// writes now goes by EVALSHA too (refusedWrites). None of these calls ran any Lua before it failed,
// so sending it again cannot apply it twice.
import { createHash } from 'node:crypto'
import { FUNCTION_NAMES, LIBRARY } from './redis-functions.js'
import { SCRIPTS, type ScriptName } from './redis-scripts.js'

const SHAS = Object.fromEntries(Object.entries(SCRIPTS).map(([name, lua]) =>
  [name, createHash('sha1').update(lua).digest('hex')])) as Record<ScriptName, string>

const messageOf = (err: unknown): string => err instanceof Error ? err.message : ''
const isNoScript = (err: unknown): boolean => messageOf(err).startsWith('NOSCRIPT')
/** Redis 7's answer to FCALL of a function no library registered. */
const isFunctionMissing = (err: unknown): boolean => messageOf(err).startsWith('ERR Function not found')
/** FCALL refused before it ran: a Redis without it (before 7.0, or renamed), or an ACL without it. */
const cannotCall = (err: unknown): boolean => /^(ERR unknown command|NOPERM\b.*\bfcall\b)/i.test(messageOf(err))
/**
 * FCALL of a function that may write, refused before it ran because Redis takes no writes now (out of
 * memory under `noeviction`, too few replicas, a failed save). A script by EVALSHA runs until its first
 * write: a logout's HDEL, a lock's release, a refresh refused as `invalid` still answer, as before.
 */
const refusedWrites = (err: unknown): boolean => /^(OOM|NOREPLICAS|MISCONF)\b/.test(messageOf(err))
/**
 * FUNCTION LOAD refused for good: an error Redis answered (no such command, an ACL, Lua it will not
 * compile), not one that passes (a connection lost, a deadline, BUSY, LOADING, OOM, READONLY).
 */
const refusedLoad = (err: unknown): boolean => /^(ERR|NOPERM)\b/.test(messageOf(err))

/**
 * How long after a load the next may be sent: a Redis out of memory would otherwise get the library's
 * text with every call, and so would a key's old node while its slot moves to a node new to a Cluster
 * (the call goes there, ASK, and finds no function; the load goes by the slot's owner).
 */
export const LOAD_RETRY_MS = 1000

/**
 * How long after Redis refused functions the runner tries them again: one FCALL (and at a miss one
 * load) each time, both refused before any Lua ran, against every script sent by EVALSHA meanwhile.
 */
export const FUNCTIONS_RETRY_MS = 600_000

/** Sends one command, routed by `key` on a cluster. */
export type Send = (key: string | undefined, command: string[]) => Promise<unknown>

export interface RunnerOptions {
  /** Sends FUNCTION LOAD to the master, or masters, that may serve a key (redis-client.ts's toMastersOf); without it, scripts go by EVALSHA only. */
  load?: Send
  now?: () => number
  /** Told when Redis refuses functions, and why, at each refusal (never Redis' own message: Redis 6 repeats a command's arguments in it). */
  onFallback?: (why: string) => void
  /** Told when functions tried again after a refusal answer: the first FCALL that does. */
  onRestored?: () => void
}

/**
 * What the store's scripts going by EVALSHA, and coming back to functions, say in the log: one line
 * each (lib/store/redis.ts tells each change once for all the store's connections).
 */
export function scriptsNotices (log: (msg: string) => void): { onScriptsFallback: (why: string) => void, onScriptsRestored: () => void } {
  return {
    onScriptsFallback: (why) => { log(`${why}: the store's scripts go by EVALSHA, which costs Redis more per call than its functions, tried again every ${FUNCTIONS_RETRY_MS / 60_000} minutes (docs/operations.md#redis)`) },
    onScriptsRestored: () => { log('Redis runs the store\'s functions again: its scripts go by FCALL') }
  }
}

/**
 * The notices of several runners (a store's connections) told once for all: a fall back until
 * functions come back, a return only after a fall back was told.
 */
export function toldOnce (store: { onScriptsFallback?: (why: string) => void, onScriptsRestored?: () => void }): Required<Pick<RunnerOptions, 'onFallback' | 'onRestored'>> {
  let fellBack = false
  return {
    onFallback: (why) => { if (!fellBack) store.onScriptsFallback?.(why); fellBack = true },
    onRestored: () => { if (fellBack) store.onScriptsRestored?.(); fellBack = false }
  }
}

/** Runs the store's scripts: by FCALL when `load` is given, else by EVALSHA only. */
export function scriptRunner (send: Send, { load, now = Date.now, onFallback, onRestored }: RunnerOptions = {}) {
  let functions = load !== undefined
  /** When functions, off, are tried again. */
  let retryAt = Infinity
  /** Functions on again after a refusal, not yet answered: the first FCALL that answers says so. */
  let retrying = false
  /** Functions off until FUNCTIONS_RETRY_MS from now, said when they were on. */
  const fallBack = (why: string): void => {
    retrying = false
    if (!functions) return
    functions = false
    retryAt = now() + FUNCTIONS_RETRY_MS
    onFallback?.(why)
  }
  let loading = false
  let nextLoadAt = 0

  /** The library onto the node(s) of `key`: one load at a time, LOAD_RETRY_MS apart at least; none while functions are off. */
  function loadLibrary (key: string | undefined): void {
    if (loading || load === undefined || !functions || now() < nextLoadAt) return
    loading = true
    nextLoadAt = now() + LOAD_RETRY_MS
    load(key, ['FUNCTION', 'LOAD', 'REPLACE', LIBRARY])
      .catch((err: unknown) => { if (refusedLoad(err)) fallBack('Redis refused FUNCTION LOAD (an ACL without function|load, or a library it will not compile)') })
      .finally(() => { loading = false })
      .catch(() => {})
  }

  return async function run (name: ScriptName, keys: string[], ...args: Array<string | number>): Promise<unknown> {
    if (!functions && now() >= retryAt) {
      functions = true
      retryAt = Infinity
      retrying = true
    }
    // FCALL and EVALSHA take the same arguments after the name: one command, its first two changed.
    const command = [functions ? 'FCALL' : 'EVALSHA', functions ? FUNCTION_NAMES[name] : SHAS[name], String(keys.length), ...keys]
    for (const arg of args) command.push(String(arg))
    if (command[0] === 'FCALL') {
      try {
        const reply = await send(keys[0], command)
        if (retrying) { retrying = false; onRestored?.() }
        return reply
      } catch (err) {
        if (isFunctionMissing(err)) loadLibrary(keys[0])
        else if (cannotCall(err)) fallBack('Redis refused FCALL (a Redis before 7.0, or an ACL without fcall)')
        else if (!refusedWrites(err)) throw err
      }
      command[0] = 'EVALSHA'
      command[1] = SHAS[name]
    }
    try {
      return await send(keys[0], command)
    } catch (err) {
      if (!isNoScript(err)) throw err
      command[0] = 'EVAL'
      command[1] = SCRIPTS[name]
      return await send(keys[0], command)
    }
  }
}
