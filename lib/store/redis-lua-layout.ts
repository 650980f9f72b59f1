// The Redis layout (redis-layout.ts) in Lua, generated from the same constants, for every script.
import { SID_CHARS } from '../ids.js'
import { ACCESS_FROM_LOGIN, BLACKLIST_PREFIX, ENDED_SLACK, FIELDS_PER_SESSION, MAX_ENDED, MAX_SERVICE_BANS, SCANLESS_FIELDS, SEP, SESSION_FIELDS } from './redis-layout.js'

type FieldName = keyof typeof SESSION_FIELDS

// Lua: the same constants, the fields of a session, and for each packed value a reader that returns
// its parts in order, then one part more that is '' unless the value has more parts than the layout,
// and a writer that takes them. Readers are unrolled string.find calls, no tables, no recursion:
// one runs on every refresh.
const luaString = (s: string): string => `'${[...s].map((c) => c < ' ' ? `\\${c.charCodeAt(0)}` : c).join('')}'`
function luaUnpack (name: string, n: number): string {
  // p0..pn: positions of the separators; the kth part runs from p(k-1) + 1 to pk - 1.
  const part = (k: number): string => `string.sub(v, p${k - 1} + 1, p${k} - 1)`
  const lines = [`local function unpack_${name}(v)`, '  v = v or \'\'', '  local p0 = 0']
  for (let k = 1; k <= n; k++) {
    const found = Array.from({ length: k - 1 }, (_, j) => part(j + 1))
    const missing = Array.from({ length: n - k + 1 }, () => '\'\'')
    lines.push(`  local p${k} = string.find(v, SEP, p${k - 1} + 1, true)`,
      `  if not p${k} then return ${[...found, `string.sub(v, p${k - 1} + 1)`, ...missing].join(', ')} end`)
  }
  lines.push(`  local e = string.find(v, SEP, p${n} + 1, true)`,
    `  return ${[...Array.from({ length: n }, (_, j) => part(j + 1)), `string.sub(v, p${n} + 1, e and e - 1 or -1)`].join(', ')}`, 'end')
  return lines.join('\n')
}
const luaField = (name: FieldName): string => {
  const entry: { parts: readonly string[], suffix?: string, name?: string } = SESSION_FIELDS[name]
  const { suffix, parts } = entry
  // hot's delivered is left out while it is '', and its generation too while it is '0'; every other
  // value keeps all its parts.
  const pack = name === 'hot'
    ? `if delivered ~= '' then return ${parts.join(' .. SEP .. ')} end
  if generation == '0' then return expiresAt .. SEP .. refreshDigest end
  return expiresAt .. SEP .. refreshDigest .. SEP .. generation`
    : `return ${parts.join(' .. SEP .. ')}`
  const field = suffix === undefined
    ? `local ${name.toUpperCase()}_FIELD = ${luaString(entry.name ?? name)}`
    : `local function ${name}Field(sid) return ${suffix === '' ? 'sid' : `sid .. ${luaString(suffix)}`} end`
  return `${field}
${luaUnpack(name, parts.length)}
local function pack_${name}(${parts.join(', ')})
  ${pack}
end`
}

export const LUA_LAYOUT = `
local SEP = ${luaString(SEP)}
local BLACKLIST_PREFIX = ${luaString(BLACKLIST_PREFIX)}
local SID_CHARS = ${SID_CHARS}
local ENDED_SUFFIX = ${luaString(SESSION_FIELDS.ended.suffix)}
local MAX_ENDED, ENDED_SLACK = ${MAX_ENDED}, ${ENDED_SLACK}
local FIELDS_PER_SESSION, SCANLESS_FIELDS = ${FIELDS_PER_SESSION}, ${SCANLESS_FIELDS}
${(Object.keys(SESSION_FIELDS) as FieldName[]).map(luaField).join('\n')}
local function fieldsOf(sid) return hotField(sid), identityField(sid), secretField(sid), rotationField(sid), deviceField(sid) end
local MAX_SERVICE_BANS = ${MAX_SERVICE_BANS}
local ACCESS_FROM_LOGIN = ${luaString(ACCESS_FROM_LOGIN)}
local function subOf(stored, openid) if stored == '' then return openid end return stored end
local function storedSub(sub, openid) if sub == openid then return '' end return sub end
`
