// Each script carries the shared Lua it uses and nothing more (lib/store/lua-prelude.ts); a script
// missing a definition it calls would fail only when Redis reaches that line, so this checks them all.
import { test } from 'tap'
import { statementsOf, withPrelude } from '../../../lib/store/lua-prelude.js'
import { LUA_COMMON } from '../../../lib/store/redis-lua.js'
import { SCRIPTS } from '../../../lib/store/redis-scripts.js'

const PRELUDE = `local A = 1
-- B doubles A
local function B(x)
  return x * A
end
local C, D = 3, 4
local function E() return C end
local function F() return 'unused' end`

test('a body gets the definitions it names and theirs, in order, comments with them', async (t) => {
  const statements = statementsOf(PRELUDE)
  t.same(statements.map((s) => s.defines), [['A'], ['B'], ['C', 'D'], ['E'], ['F']])
  t.equal(withPrelude(statements, 'return B(2)'), 'local A = 1\n-- B doubles A\nlocal function B(x)\n  return x * A\nend\nreturn B(2)')
  t.equal(withPrelude(statements, 'return D + E()'), 'local C, D = 3, 4\nlocal function E() return C end\nreturn D + E()')
  t.equal(withPrelude(statements, 'return 1'), '\nreturn 1', 'nothing when nothing is named')
  t.equal(withPrelude(statements, 'return XA'), '\nreturn XA', 'whole words only')
})

test('a prelude it cannot read is refused at load, not turned into a broken script', async (t) => {
  t.throws(() => statementsOf('  orphan = 1'), /a line outside any statement/)
  t.throws(() => statementsOf('local function'), /cannot read what this defines/)
})

test('every script of the store defines each shared name it uses, and leaves out what it does not', async (t) => {
  const shared = statementsOf(LUA_COMMON).flatMap((s) => s.defines)
  for (const [name, text] of Object.entries(SCRIPTS)) {
    const topLevel = text.split('\n').filter((line) => line.startsWith('local ')).join('\n')
    const defined = new Set(statementsOf(topLevel).flatMap((s) => s.defines))
    const words = new Set(text.match(/[A-Za-z_][A-Za-z0-9_]*/g))
    t.same(shared.filter((n) => words.has(n) && !defined.has(n)), [], `${name} defines every shared name it uses`)
  }
  t.notMatch(SCRIPTS.wxauthRotate, /local function scan\(/, 'a refresh does not carry the login\'s scan')
  t.match(SCRIPTS.wxauthCreate, /local function scan\(/)
  t.ok(SCRIPTS.wxauthRevoke.length < LUA_COMMON.length / 4, 'ending one session carries a few names of the prelude, not all of it')
})
