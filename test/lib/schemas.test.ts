// The schemas' own examples: OpenAPI shows them, and Swagger UI's "Try it out" sends a request body's
// example as it is. Each one must pass the schema it illustrates (TypeBox's check: the patterns, the
// lengths, the required properties), at every depth.
import { FormatRegistry, Kind, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { test } from 'tap'
import * as schemas from '../../lib/schemas.js'

// The formats the schemas use, as Fastify's Ajv (ajv-formats) reads them.
FormatRegistry.Set('date-time', (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(v) && !Number.isNaN(Date.parse(v)))

/** Every schema with examples in `schema`, itself and what it is made of, with where it sits. */
function withExamples (schema: TSchema, at: string, out: Array<[string, TSchema]> = [], seen = new Set<unknown>()): Array<[string, TSchema]> {
  if (seen.has(schema)) return out
  seen.add(schema)
  if (Array.isArray(schema.examples) || schema.example !== undefined) out.push([at, schema])
  for (const [key, child] of Object.entries(schema.properties ?? {})) withExamples(child as TSchema, `${at}.${key}`, out, seen)
  for (const [i, child] of [...(schema.anyOf ?? []), ...(schema.allOf ?? []), ...(schema.oneOf ?? [])].entries()) withExamples(child as TSchema, `${at}|${i}`, out, seen)
  if (typeof schema.items === 'object' && schema.items !== null) withExamples(schema.items as TSchema, `${at}[]`, out, seen)
  return out
}

test('every example of the gateway\'s schemas passes its schema', async (t) => {
  const found = Object.entries(schemas).filter(([, v]) => typeof v === 'object' && v !== null && Kind in v)
    .flatMap(([name, schema]) => withExamples(schema as TSchema, name))
  t.ok(found.length >= 10, `${found.length} schemas with examples`)
  for (const [at, schema] of found) {
    const examples = (Array.isArray(schema.examples) ? schema.examples : [schema.example]) as unknown[]
    for (const example of examples) t.ok(Value.Check(schema, example), `${at}: ${JSON.stringify(example).slice(0, 80)}`)
  }
})
