// The docs are part of what users get: every error code the gateway can answer with has a row in
// docs/http-api.md, every configuration key a row in docs/configuration.md, and every relative link
// in the markdown leads to a file (and heading) that exists. Codes and keys are read from the code,
// so a new one fails here until it is documented.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { errorCodes as fastifyErrorCodes } from 'fastify'
import { test } from 'tap'
import * as errors from '../lib/errors.js'
import { ConfigSchema } from '../lib/schemas.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const read = (path: string): string => readFileSync(join(root, path), 'utf8')

// Directories that hold no gateway code: tests, tools, the simulator (it answers WeChat's errcodes).
const NOT_GATEWAY = new Set(['node_modules', 'dist', 'test', 'bench', 'simulator', 'docs', 'coverage'])

function sourceFiles (dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name.startsWith('.')) return []
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return NOT_GATEWAY.has(entry.name) ? [] : sourceFiles(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

/** code -> status, for every error constructor lib/errors.ts exports (each made with @fastify/error). */
function constructorCodes (): Map<string, number | undefined> {
  const codes = new Map<string, number | undefined>()
  for (const value of Object.values(errors)) {
    // Error classes only (lib/errors.ts also exports helpers that build a coded error with details).
    if (typeof value !== 'function' || !(value.prototype instanceof Error)) continue
    const instance = new (value as new () => { code?: unknown, statusCode?: unknown })()
    if (typeof instance.code === 'string') codes.set(instance.code, typeof instance.statusCode === 'number' ? instance.statusCode : undefined)
  }
  return codes
}

// `code: 'X_Y'` in an answer built by hand (the error handler's 500, the readiness check's 503) and
// createError('X_Y', ...) anywhere else. A code has an underscore, which tells it from errno names.
const LITERAL_CODE = /(?:\bcode:\s*|createError\(\s*)'([A-Z][A-Z0-9]*_[A-Z0-9_]+)'/g

function literalCodes (): Map<string, string> {
  const found = new Map<string, string>()
  for (const file of sourceFiles()) {
    for (const m of read(relative(root, file)).matchAll(LITERAL_CODE)) {
      if (!found.has(m[1] as string)) found.set(m[1] as string, relative(root, file))
    }
  }
  return found
}

/** The first two cells of every table row whose first cell is one `CODE` or `KEY`. */
function tableRows (markdown: string): Map<string, string[]> {
  const rows = new Map<string, string[]>()
  for (const m of markdown.matchAll(/^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|([^|\n]*)\|/gm)) {
    const name = m[1] as string
    rows.set(name, [...(rows.get(name) ?? []), (m[2] as string).trim()])
  }
  return rows
}

test('every error code in the code has a row in docs/http-api.md, with its status', async (t) => {
  const rows = tableRows(read('docs/http-api.md'))
  const ours = constructorCodes()
  const literals = literalCodes()
  t.ok(ours.size >= 20, `lib/errors.ts exports the error constructors (${ours.size} found)`)
  t.ok(literals.has('INTERNAL_ERROR'), 'the error handler\'s own code is found in the source')

  const missing = [...new Set([...ours.keys(), ...literals.keys()])].filter((code) => !rows.has(code)).sort()
  t.same(missing, [], 'no code is missing from docs/http-api.md')

  // A status cell that is a number must be the status the error carries (CONFIG_INVALID is a boot
  // error: its row says so in words).
  for (const [code, status] of ours) {
    for (const cell of rows.get(code) ?? []) {
      if (/^\d{3}$/.test(cell)) t.equal(Number(cell), status, `${code}: the documented status is the error's`)
    }
  }
})

test('every code docs/http-api.md lists exists, in the gateway or in Fastify', async (t) => {
  const known = new Set([...constructorCodes().keys(), ...literalCodes().keys()])
  const fastify = fastifyErrorCodes as unknown as Record<string, new () => { statusCode?: number }>
  for (const [code, cells] of tableRows(read('docs/http-api.md'))) {
    if (known.has(code)) continue
    const FastifyError = fastify[code]
    t.ok(FastifyError !== undefined, `${code} is a code the gateway or Fastify has`)
    if (FastifyError === undefined) continue
    for (const cell of cells) {
      if (/^\d{3}$/.test(cell)) t.equal(Number(cell), new FastifyError().statusCode, `${code}: the documented status is Fastify's`)
    }
  }
})

test('every configuration key has a row in docs/configuration.md, and every row is a key', async (t) => {
  const keys = Object.keys(ConfigSchema.properties)
  const rows = tableRows(read('docs/configuration.md'))
  t.ok(keys.length >= 20, `ConfigSchema has the configuration keys (${keys.length} found)`)
  t.same(keys.filter((key) => !rows.has(key)), [], 'no key is missing from docs/configuration.md')
  t.same([...rows.keys()].filter((name) => !keys.includes(name)), [], 'no documented key is gone from ConfigSchema')
})

const withoutFences = (markdown: string): string => markdown.replace(/^```[\s\S]*?^```/gm, '')
const withoutCode = (markdown: string): string => withoutFences(markdown).replace(/`[^`\n]*`/g, '')

/** GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens. */
const slug = (heading: string): string =>
  heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')

function anchorsOf (markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const anchors = new Set<string>()
  for (const m of withoutFences(markdown).matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const base = slug(m[1] as string)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    anchors.add(n === 0 ? base : `${base}-${n}`)
  }
  return anchors
}

test('every relative link in README.md, BENCHMARKS.md and docs/ leads to a file and heading that exist', async (t) => {
  const pages = ['README.md', 'BENCHMARKS.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
  t.ok(pages.includes('docs/http-api.md') && pages.includes('docs/configuration.md'), 'the reference pages exist')
  let links = 0
  for (const page of pages) {
    for (const m of withoutCode(read(page)).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1] as string
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto:
      links++
      const [path = '', anchor] = target.split('#', 2)
      const file = path === '' ? page : relative(root, resolve(root, dirname(page), path))
      t.ok(existsSync(join(root, file)), `${page}: ${target} leads to a file`)
      if (anchor !== undefined && anchor !== '' && file.endsWith('.md') && existsSync(join(root, file))) {
        t.ok(anchorsOf(read(file)).has(anchor), `${page}: ${target} leads to a heading`)
      }
    }
  }
  t.ok(links > 10, `the pages link to each other (${links} relative links)`)
})
