// GET /auth/qr/:id/image (routes/qr-image.ts) when WeChat refuses the mini program's access_token: it
// was replaced (a force refresh by another service, an operator), so the image is made again with a
// renewed token, for every instance, rather than answering 502 until the token's scheduled renewal.
import type { FastifyInstance } from 'fastify'
import { test } from 'tap'
import { buildApp, startRedis, startSim } from '../helper.js'

const create = async (app: FastifyInstance): Promise<string> => (await app.inject({ method: 'POST', url: '/auth/qr' })).json<{ id: string }>().id

test('a refused access_token is renewed once, for both instances, and the image made with the new one', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const [a, b] = await Promise.all([0, 1].map(async () => await buildApp(t, { sim, redisServer: redis }))) as [FastifyInstance, FastifyInstance]
  const id = await create(a)
  t.equal((await a.inject(`/auth/qr/${id}/image`)).statusCode, 200, 'an image with the first token')
  const first = sim.accessTokenOf()
  sim.invalidateAccessToken()
  const renewals = (): number => sim.calls.filter((c) => c.path === '/cgi-bin/stable_token').length
  const before = renewals()
  const res = await a.inject(`/auth/qr/${id}/image`)
  t.equal(res.statusCode, 200, 'not 502 WX_ACCESS_TOKEN_REJECTED')
  t.equal(res.headers['content-type'], 'image/png')
  t.same(sim.calls.filter((c) => c.path === '/wxa/getwxacodeunlimit').slice(-2).map((c) => c.errcode), [40001, 0], 'refused, then made with the renewed token')
  t.equal(renewals(), before + 1, 'one renewal')
  t.not(sim.accessTokenOf(), first)
  t.equal((await b.inject(`/auth/qr/${await create(b)}/image`)).statusCode, 200, 'the other instance takes the renewed token from Redis')
  t.equal(renewals(), before + 1, 'without a renewal of its own')
})

test('a host\'s own call through fastify.wechat.withAccessToken: a refusal renews the token once and runs the call again', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim })
  const first = await app.wechat.getAccessToken()
  sim.invalidateAccessToken()
  const seen: string[] = []
  // As a host maps WeChat's errcode 40001, 40014 or 42001: an error whose code is WX_ACCESS_TOKEN_REJECTED.
  const answer = await app.wechat.withAccessToken(async (token, deadline) => {
    seen.push(token)
    t.ok(deadline > Date.now(), 'a deadline in the future')
    if (token !== sim.accessTokenOf()) throw Object.assign(new Error('errcode 40001'), { code: 'WX_ACCESS_TOKEN_REJECTED' })
    return 'done'
  })
  t.equal(answer, 'done')
  t.same(seen, [first, sim.accessTokenOf()], 'the refused token, then the renewed one')
  t.equal(await app.wechat.getAccessToken(), sim.accessTokenOf(), 'kept for the next call')
  await t.rejects(app.wechat.withAccessToken(async () => { throw Object.assign(new Error('x'), { code: 'WX_UNAVAILABLE' }) }), { code: 'WX_UNAVAILABLE' }, 'other errors are thrown as they are')
})
