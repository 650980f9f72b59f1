// A script's share of the shared Lua: only the definitions its body uses, and theirs in turn.
//
// Redis runs a script's whole text on every call, so each definition of the shared prelude (some 40
// functions and constants) costs every call its closure or its value, used or not: about 2.4 µs a
// call on this project's machine (INFO commandstats, a script of the prelude alone against `return
// 1`), a tenth of a refresh's Redis time. Each script now carries what it calls. (On Redis 7 the
// scripts run as functions of one library, whose shared Lua runs once, at its load: redis-functions.ts;
// this is what a Redis without functions runs.)
//
// The prelude is a sequence of top-level `local` statements (a `local function name` or `local a, b =
// ...`) with their indented bodies; comment lines belong to the statement after them. A statement is
// kept when a name it defines appears as a word in the body or in a statement kept; a word found in
// a comment or a string keeps a statement it did not need, never drops one it does.

interface Statement { text: string, defines: string[], words: Set<string> }

const WORD = /[A-Za-z_][A-Za-z0-9_]*/g
const wordsOf = (text: string): Set<string> => new Set(text.match(WORD))

function definedBy (head: string): string[] {
  const fn = /^local function ([A-Za-z_][A-Za-z0-9_]*)/.exec(head)
  if (fn !== null) return [fn[1] as string]
  const names = /^local ([^=]+)=/.exec(head)
  if (names === null) throw new Error(`lua prelude: cannot read what this defines: ${head}`)
  return (names[1] as string).split(',').map((n) => n.trim())
}

/** The prelude's top-level statements, in order. */
export function statementsOf (prelude: string): Statement[] {
  const statements: Statement[] = []
  let comments: string[] = []
  for (const line of prelude.split('\n')) {
    if (line.startsWith('local ')) {
      statements.push({ text: [...comments, line].join('\n'), defines: definedBy(line), words: new Set() })
      comments = []
    } else if (line.startsWith('--')) {
      comments.push(line)
    } else if (line.trim() !== '') {
      const last = statements.at(-1)
      if (last === undefined) throw new Error(`lua prelude: a line outside any statement: ${line}`)
      last.text += '\n' + line
    }
  }
  for (const s of statements) s.words = wordsOf(s.text)
  return statements
}

/** `body` after the statements of `prelude` it needs, in the prelude's order. */
export function withPrelude (statements: readonly Statement[], body: string): string {
  const needed = wordsOf(body)
  const kept = new Set<Statement>()
  for (let grew = true; grew;) {
    grew = false
    for (const s of statements) {
      if (kept.has(s) || !s.defines.some((name) => needed.has(name))) continue
      kept.add(s)
      for (const w of s.words) needed.add(w)
      grew = true
    }
  }
  return statements.filter((s) => kept.has(s)).map((s) => s.text).join('\n') + '\n' + body
}

/**
 * `lua(body)`: a script, `body` after the statements of `prelude` it needs. `bodyOf(script)`: what a
 * script made so runs after the shared Lua, the body given (the functions library, redis-functions.ts,
 * carries the prelude once and each body in a function), or the whole text of a script made otherwise.
 */
export function scriptsOf (prelude: string) {
  const statements = statementsOf(prelude)
  const bodies = new Map<string, string>()
  return {
    lua (body: string): string {
      const text = withPrelude(statements, body)
      bodies.set(text, body)
      return text
    },
    bodyOf: (script: string): string => bodies.get(script) ?? script
  }
}
