// The plugins' options, checked when a plugin is registered, before it starts anything: an option it
// does not take, a configuration key given as an option, or a value of the wrong kind refuses the boot
// with a ConfigError (CONFIG_INVALID) that names it. A misspelt option would otherwise be ignored, and
// a value of the wrong kind fail later with a TypeError that names nothing. (The configuration's own
// values, under `config`, are lib/config.ts's.)
import { ConfigSchema } from './config-schema.js'
import { ConfigError } from './errors.js'
import { clientKind } from './store/redis-client.js'

/** What an option's value must be, when given (undefined is always allowed): a test, and the words that say it. */
export type OptionRule = readonly [test: (value: unknown) => boolean, rule: string]

export const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
const isPath = (value: unknown): boolean => typeof value === 'string' && /^\/[\x21-\x7e]*$/.test(value)

export const PATH: OptionRule = [isPath, 'a path that starts with /']
export const PATH_OR_FALSE: OptionRule = [(value) => value === false || isPath(value), 'a path that starts with / (or false)']
export const FUNCTION: OptionRule = [(value) => typeof value === 'function', 'a function']
export const BOOLEAN: OptionRule = [(value) => typeof value === 'boolean', 'true or false']
export const CONFIG: OptionRule = [isRecord, 'an object of configuration values by their environment-variable names']
export const ENV: OptionRule = [(value) => value === false || isRecord(value), 'an object such as process.env (or false)']
export const APPS: OptionRule = [Array.isArray, 'an array of { appid, secret }']
export const REDIS: OptionRule = [(value) => clientKind(value) !== null,
  'a Redis client (an ioredis client or cluster, or a node-redis client, cluster or sentinel of node-redis 5 or later, not in legacy mode); a URL goes in config.REDIS_URL']

const CONFIG_KEYS = new Set(Object.keys(ConfigSchema.properties))

// What fastify.register takes besides a plugin's options. Fastify applies them to an encapsulated
// plugin (the route plugins), and ignores them for one that adds to the context it is given
// (fastify-plugin: the gateway and its shared plugins), which would silently do something else.
const REGISTER_OPTIONS = ['prefix', 'logLevel', 'logSerializers']
const IGNORED_HINT: Record<string, string> = {
  prefix: 'set config.AUTH_PREFIX for the gateway\'s routes (healthPath and jwksPath for the others), or register the plugin inside a prefixed context of yours, whose routes then see its decorators',
  logLevel: 'register the plugin inside a context of yours that has it',
  logSerializers: 'register the plugin inside a context of yours that has them'
}

export interface OptionsOf {
  /** The plugin as the host knows it (its export), or '' for the whole gateway. */
  plugin: string
  /** Every option it takes, with its rule. */
  rules: Record<string, OptionRule>
  /** Whether Fastify applies its register options (prefix, logLevel, logSerializers) to the plugin: encapsulated. */
  encapsulated: boolean
  /** What to do instead of a register option Fastify ignores for it, when the general hint does not fit. */
  ignoredHint?: string
}

/** Refuses, with CONFIG_INVALID naming it, an option `of` does not take or whose value breaks its rule. */
export function checkOptions (opts: unknown, of: OptionsOf): void {
  const refuse = (message: string): never => { throw new ConfigError(of.plugin === '' ? message : `${of.plugin}: ${message}`) }
  if (!isRecord(opts)) return refuse('the options must be an object')
  const given = Object.keys(opts).filter((name) => opts[name] !== undefined)
  const configKeys = given.filter((name) => CONFIG_KEYS.has(name))
  if (configKeys.length > 0 && 'config' in of.rules) {
    refuse(`${configKeys.join(', ')}: configuration keys go under the config option ({ config: { ${configKeys[0] as string}: … } })`)
  }
  for (const name of given) {
    if (REGISTER_OPTIONS.includes(name)) {
      if (!of.encapsulated && opts[name] !== '') refuse(`${name}: Fastify ignores it for this plugin, which adds its routes and decorators to the context it is registered in; ${of.ignoredHint ?? IGNORED_HINT[name] as string}`)
      continue
    }
    const rule = of.rules[name]
    if (rule === undefined) {
      const known = Object.keys(of.rules)
      const like = known.find((k) => k.toLowerCase() === name.toLowerCase())
      refuse(`${name} is not an option${like !== undefined ? ` (${like}?)` : known.length > 0 ? ` (the options: ${known.join(', ')})` : ' (it takes none)'}`)
    } else if (!rule[0](opts[name])) {
      refuse(`option ${name} must be ${rule[1]}`)
    }
  }
}
