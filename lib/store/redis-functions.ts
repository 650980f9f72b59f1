// The store's scripts as one library of Redis Functions (Redis 7.0 and later; redis-script-runner.ts
// sends them, and falls back to EVALSHA where Redis has no functions or an ACL refuses them).
//
// Why: Redis runs a script's whole text at every EVALSHA, so every `local function` of the shared Lua
// a script carries is made anew at each call (a closure each: Lua 5.1). A refresh's script carries 31
// of them. A library's top level runs once, when it is loaded: its functions find the shared Lua made
// already. Measured on a bare redis-server (INFO commandstats, EVALSHA and FCALL of the same
// rotation alternated): BENCHMARKS.md, "Scripts as functions".
//
// The library and its functions are named with a digest of their Lua, so that gateways of two
// versions (a rolling upgrade) each call their own; a library stays in Redis (and in its RDB and AOF)
// until deleted: docs/operations.md says how to remove those of earlier versions.
import { createHash } from 'node:crypto'
import { LUA_COMMON, bodyOf } from './redis-lua.js'
import { SCRIPTS, type ScriptName } from './redis-scripts.js'

// Scripts that write nothing: a function must say so (`no-writes`) to run while Redis is out of
// memory, as a script that writes nothing does (redis-script-runner.ts sends every other function
// refused so to EVALSHA). test/lib/store/redis-functions.test.ts checks that each function carries the
// flags this list gives it; a script that writes nothing must be added here by hand.
export const READ_ONLY: ReadonlySet<ScriptName> = new Set<ScriptName>(['wxauthKeptDue'])

const NAMES = Object.keys(SCRIPTS) as ScriptName[]
const functionName = (name: ScriptName, version: string): string => `${name}_${version}`

/** The library's source after its first line, its functions named with `version`: the shared Lua once, then each script's body as a function of KEYS and ARGV. */
const source = (version: string): string => [
  LUA_COMMON,
  ...NAMES.map((name) => `redis.register_function{function_name = '${functionName(name, version)}', callback = function (KEYS, ARGV)
${bodyOf(SCRIPTS[name])}
end${READ_ONLY.has(name) ? ", flags = {'no-writes'}" : ''}}`)
].join('\n')

// A digest of all the library says, its flags included: a library changed in any way gets a new name.
const VERSION = createHash('sha1').update(source('')).digest('hex').slice(0, 12)

/** The library's name in Redis. */
export const LIBRARY_NAME = `wxauth_${VERSION}`

/** Each script's function, named for this version (function names are global in Redis, across libraries). */
export const FUNCTION_NAMES = Object.fromEntries(NAMES.map((name) => [name, functionName(name, VERSION)])) as Record<ScriptName, string>

/** The library's source, for FUNCTION LOAD. */
export const LIBRARY = `#!lua name=${LIBRARY_NAME}\n${source(VERSION)}`
