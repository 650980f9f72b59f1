// http/route-context.ts: what every context of the gateway's routes sets up. Here: no answer of a
// gateway route may be kept by a cache (tokens, sessions, refusals), but one that says otherwise.
import { test } from 'tap'
import { bearer, buildApp, login, me, refresh, startSim } from '../helper.js'

test('every answer of the gateway\'s routes carries cache-control: no-store: tokens, sessions, refusals', async (t) => {
  const sim = await startSim(t)
  const app = await buildApp(t, { sim })
  const loggedIn = await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 'cora.1' } })
  t.equal(loggedIn.statusCode, 200)
  t.equal(loggedIn.headers['cache-control'], 'no-store', 'a login\'s token pair')
  const pair = await login(app, 'cora.2')
  const answers = {
    refresh: await refresh(app, pair.refreshToken),
    me: await me(app, pair.accessToken),
    sessions: await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(pair.accessToken) }),
    ticket: await app.inject({ method: 'POST', url: '/auth/tickets', headers: bearer(pair.accessToken) }),
    qr: await app.inject({ method: 'POST', url: '/auth/qr', payload: {} }),
    refused: await me(app, 'not-a-token'),
    invalidBody: await app.inject({ method: 'POST', url: '/auth/login', payload: { code: 7 } }),
    notFound: await app.inject({ method: 'GET', url: '/auth/nothing-here' })
  }
  for (const [name, res] of Object.entries(answers)) t.equal(res.headers['cache-control'], 'no-store', `${name}: ${res.statusCode}`)
  t.equal(answers.refresh.statusCode, 200)
  t.equal(answers.refused.statusCode, 401)
})
