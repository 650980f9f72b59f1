// What the gateway adds to an OpenAPI document made by @fastify/swagger (its own, or the host's):
// the parts its routes refer to, and bodies that may be left out. Run at boot, never per request.
import type { SwaggerTransform } from '@fastify/swagger'
import { OpenApiParts } from '../lib/schemas.js'

type Body = { required?: boolean, content?: Record<string, { schema?: { anyOf?: Array<{ type?: unknown }> } }> }
export type Document = { tags?: Array<{ name: string }>, components?: Record<string, object>, paths?: Record<string, Record<string, { requestBody?: Body }>> }

/** A gateway route brings what it needs into whichever document lists it: its tags and security scheme. */
export const withGatewayParts: SwaggerTransform = ({ schema, url, ...arg }) => {
  if (!('openapiObject' in arg)) return { schema: { ...schema, security: undefined }, url } // Swagger 2.0 has no bearer scheme
  const doc = arg.openapiObject as Document
  const named = new Set(doc.tags?.map((tag) => tag.name))
  doc.tags = [...(doc.tags ?? []), ...OpenApiParts.tags.filter((tag) => !named.has(tag.name))]
  const { securitySchemes, responses } = doc.components ?? {}
  doc.components = { ...doc.components, securitySchemes: { ...securitySchemes, ...OpenApiParts.securitySchemes }, responses: { ...OpenApiParts.responses, ...responses } }
  return { schema, url }
}

/** @fastify/swagger marks every body required; one whose schema takes null (logout's) is optional. */
export function markOptionalBodies (doc: Document): Document {
  const bodies = Object.values(doc.paths ?? {}).flatMap((path) => Object.values(path).map((operation) => operation.requestBody ?? {}))
  for (const body of bodies) if (Object.values(body.content ?? {}).some((m) => m.schema?.anyOf?.some((s) => s.type === 'null'))) body.required = false
  return doc
}
