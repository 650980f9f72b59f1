// Authorization: what a route asks of its caller (roles, permissions, a recent step-up, no ban from
// its service) checked against what authenticate read from the store in its one round trip. No I/O.
import { Value, ValueErrorType } from '@sinclair/typebox/value'
import { Requirement } from './access-schemas.js'
import { AuthForbiddenError, AuthStepUpRequiredError, serviceBanned } from './errors.js'
import type { LiveAccess } from './store/types.js'

export type { Requirement } from './access-schemas.js'

/** What authorization reads of an authenticated caller. */
export type Holder = Pick<LiveAccess, 'roles' | 'permissions' | 'steppedUpAt' | 'serviceBans'>

/** Whether the held permissions grant `wanted`: exactly, by a held `prefix*`, or by `*`. */
export function grants (held: readonly string[], wanted: string): boolean {
  for (const p of held) {
    if (p === wanted) return true
    if (p.endsWith('*') && wanted.startsWith(p.slice(0, -1))) return true
  }
  return false
}

/**
 * Builds the check of a requirement, validated now (at boot, where a typo belongs). The check
 * throws AUTH_ACCOUNT_BANNED (banned from the service), AUTH_FORBIDDEN (naming what is missing) or
 * AUTH_STEP_UP_REQUIRED, in that order: stepping up cannot help a caller who lacks a role.
 */
export function requirementCheck (requirement: Requirement, stepUpTtlSec: number, now: () => number = Date.now): (caller: Holder) => void {
  if (!Value.Check(Requirement, requirement)) {
    const first = Value.Errors(Requirement, requirement).First()
    // A union's own message is "Expected union value": its description says which values it takes.
    const why = first?.type === ValueErrorType.Union && typeof first.schema.description === 'string' ? `must be ${first.schema.description}` : first?.message
    throw new TypeError(`authorize: ${first === undefined ? 'invalid requirement' : `${first.path || 'the requirement'} ${why}`}`)
  }
  const { roles = [], permissions = [], mode = 'all', stepUp, service } = requirement
  if (roles.length + permissions.length === 0 && stepUp === undefined && service === undefined) {
    throw new TypeError('authorize: name roles, permissions, stepUp or service')
  }
  const windowMs = stepUp === undefined ? 0 : Math.min(stepUp === true ? stepUpTtlSec : stepUp, stepUpTtlSec) * 1000

  return function check (caller) {
    if (service !== undefined) {
      const ban = caller.serviceBans.find((b) => b.service === service && (b.until === null || b.until > now()))
      if (ban !== undefined) throw serviceBanned(ban)
    }
    const missingRoles = roles.filter((r) => !caller.roles.includes(r))
    const missingPermissions = permissions.filter((p) => !grants(caller.permissions, p))
    const missing = missingRoles.length + missingPermissions.length
    if (mode === 'all' ? missing > 0 : missing === roles.length + permissions.length && missing > 0) {
      const named = [...missingRoles.map((r) => `role ${r}`), ...missingPermissions.map((p) => `permission ${p}`)]
      throw Object.assign(new AuthForbiddenError(`${mode === 'any' ? 'one of ' : ''}${named.join(', ')}`), {
        detail: { mode, ...(missingRoles.length > 0 ? { roles: missingRoles.join(',') } : {}), ...(missingPermissions.length > 0 ? { permissions: missingPermissions.join(',') } : {}) }
      })
    }
    // Anything but a time (a host that put bare claims on the request) counts as no step-up.
    const at = caller.steppedUpAt
    if (windowMs > 0 && !(typeof at === 'number' && Number.isFinite(at) && at + windowMs > now())) {
      throw Object.assign(new AuthStepUpRequiredError(), { detail: { maxAgeSeconds: String(windowMs / 1000) } })
    }
  }
}
