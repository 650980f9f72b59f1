// Session control across gateway instances sharing one Redis: exclusive device types and the session
// limit hold under concurrent logins, because each is decided in the script that creates the session.
import type { FastifyInstance } from 'fastify'
import { test } from 'tap'
import { buildApp, login, me, refresh, startRedis, startSim, type Pair } from './helper.js'

async function twoInstances (t: { teardown: (fn: () => unknown) => void }, config: Record<string, unknown>): Promise<FastifyInstance[]> {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  return await Promise.all([0, 1].map(async () => await buildApp(t, { sim, redisServer: redis, config })))
}

/** Each pair's access and refresh token answers, as [access status, access code, refresh status, refresh code]. */
async function outcomes (apps: FastifyInstance[], pairs: Pair[]): Promise<Array<[number, string | undefined, number, string | undefined]>> {
  return await Promise.all(pairs.map(async (p, i) => {
    const app = apps[i % apps.length] as FastifyInstance
    const access = await me(app, p.accessToken)
    const renewed = await refresh(app, p.refreshToken)
    return [access.statusCode, access.json().code, renewed.statusCode, renewed.json().code]
  }))
}

test('20 concurrent logins of one user on an exclusive device type, on 2 instances: one session survives, the rest are told why', async (t) => {
  const apps = await twoInstances(t, { EXCLUSIVE_DEVICE_TYPES: 'mp' })
  const pairs = await Promise.all(Array.from({ length: 20 }, async (_, i) => await login(apps[i % 2] as FastifyInstance, `racer.${i}`)))
  const results = await outcomes(apps, pairs)
  const alive = results.filter(([status]) => status === 200)
  t.equal(alive.length, 1, 'exactly one session of the type is alive')
  t.same(alive[0]?.slice(2), [200, undefined], 'and its refresh token works')
  const replaced = results.filter(([status]) => status !== 200)
  t.equal(replaced.length, 19)
  t.same([...new Set(replaced.map((r) => r.join(' ')))], ['401 AUTH_SESSION_REPLACED 401 AUTH_SESSION_REPLACED'], 'every other access and refresh token is told why')
})

test('20 concurrent logins of one user with a session limit of 3, on 2 instances: never more than 3 alive', async (t) => {
  const apps = await twoInstances(t, { MAX_SESSIONS_PER_USER: 3 })
  const pairs = await Promise.all(Array.from({ length: 20 }, async (_, i) => await login(apps[i % 2] as FastifyInstance, `crowd.${i}`)))
  const results = await outcomes(apps, pairs)
  t.equal(results.filter(([status]) => status === 200).length, 3, 'exactly the limit')
  t.same([...new Set(results.filter(([status]) => status !== 200).map((r) => r.join(' ')))], ['401 AUTH_SESSION_REPLACED 401 AUTH_SESSION_REPLACED'])
})
