// startSimulator and the Simulator it hands tests: defaults, several mini programs.
import { test } from 'tap'
import { DEV_APPID, startSimulator } from '../../simulator/index.js'
import { startSim, APPID, SECRET } from '../helper.js'
import { call, checkSession, decrypt, get, phone, q, sign, stableToken, tokenErrcode, B, type App } from './fixtures/client.js'

test('several mini programs: own secrets, openids, session_keys and tokens; one unionid', async (t) => {
  const A: App = { appid: APPID, secret: SECRET }
  const sim = await startSim(t, { apps: [A, B] })
  t.same(sim.apps, [A, B])
  t.equal(sim.appid, A.appid)
  t.equal(sim.secret, A.secret)

  const { body } = await call(`${sim.url}/sns/jscode2session?${q({ js_code: 'alice.b', appid: B.appid, secret: B.secret })}`)
  t.same(body, { session_key: sim.sessionKeyOf('alice', B.appid), openid: sim.openidOf('alice', B.appid), unionid: sim.unionidOf('alice') })
  t.not(sim.openidOf('alice', B.appid), sim.openidOf('alice'))
  t.equal(sim.openidOf('alice', A.appid), sim.openidOf('alice'), 'the first app is the default')
  t.equal(sim.sessionKeyOf('alice'), undefined, 'not logged in to A')
  t.match(sim.calls.at(-1), { appid: B.appid })
  t.match((await call(`${sim.url}/sns/jscode2session?${q({ js_code: 'alice.c', appid: B.appid, secret: A.secret })}`)).body, { errcode: 40125 }, "A's secret is not B's")

  const tokenA = (await stableToken(sim)).access_token
  const tokenB = (await stableToken(sim, B)).access_token
  t.not(tokenA, tokenB)
  t.equal(sim.accessTokenOf(B.appid), tokenB)
  t.equal(sim.accessTokenOf(), tokenA)
  t.match(await stableToken(sim, { appid: B.appid, secret: A.secret }), { errcode: 40125 })

  t.match(await phone(sim, tokenB, { code: 'bob.1' }), { phone_info: { watermark: { appid: B.appid } } })
  t.match(sim.calls.at(-1), { appid: B.appid })
  const key = sim.sessionKeyOf('alice', B.appid) as string
  const openidB = sim.openidOf('alice', B.appid)
  t.match(await checkSession(sim, tokenB, openidB, sign(key)), { errcode: 0 })
  t.match(await checkSession(sim, tokenA, openidB, sign(key)), { errcode: 87009 }, "A's token acts for A only")

  const enc = await call(`${sim.url}/dev/encrypt?user=alice&appid=${B.appid}`, { body: { n: 1 } })
  t.match(decrypt(key, enc.body as { encryptedData: string, iv: string }), { n: 1, watermark: { appid: B.appid } })

  sim.invalidateAccessToken(B.appid)
  t.equal(await tokenErrcode(sim, tokenB), 40001)
  t.equal(await tokenErrcode(sim, tokenA), 0, "B's revocation leaves A alone")
})

test('defaults, and the remaining ways to call jscode2session and checksession', async (t) => {
  const plain = await startSimulator()
  t.teardown(async () => await plain.close())
  t.equal(plain.appid, DEV_APPID)
  t.match(plain.secret, /^[0-9a-f]{32}$/)
  t.same(plain.apps, [{ appid: plain.appid, secret: plain.secret }])

  const sim = await startSim(t, { slowMs: 20 })
  const noCode = new URLSearchParams({ appid: APPID, secret: SECRET, grant_type: 'authorization_code' })
  t.match((await get(`${sim.url}/sns/jscode2session?${noCode.toString()}`)).body, { errcode: 41008 })
  t.same(sim.calls.at(-1), { path: '/sns/jscode2session', code: null, errcode: 41008, appid: APPID })
  t.match((await get(`${sim.url}/sns/jscode2session?js_code=alice&grant_type=authorization_code`)).body, { errcode: 40013 })
  t.match((await get(`${sim.url}/sns/jscode2session?${q({ js_code: 'slow.1' })}`)).body, { openid: sim.openidOf('slow') }, 'slow answers after slowMs')

  const token = (await stableToken(sim)).access_token
  t.match((await call(`${sim.url}/wxa/checksession?access_token=${token}&signature=x&sig_method=hmac_sha256`)).body, { errcode: 87009 }, 'no openid')
})
