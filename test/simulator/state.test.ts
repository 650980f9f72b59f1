// What the simulator knows, without HTTP: apps, users, one-time codes, access_tokens.
import { test } from 'tap'
import { startSimulator } from '../../simulator/index.js'
import { createState, DEV_APPID } from '../../simulator/state.js'
import { APPID, SECRET } from '../helper.js'
import { B, SECOND, T0 } from './fixtures/client.js'

const A = { appid: APPID, secret: SECRET }

test('apps must be a non-empty list of distinct, complete credentials', async (t) => {
  await t.rejects(startSimulator({ apps: [] }), /at least one/)
  await t.rejects(startSimulator({ apps: [B, { ...B }] }), /listed twice/)
  await t.rejects(startSimulator({ apps: [{ appid: 'wx3', secret: '' }] }), /non-empty/)
})

test('one mini program by default, or the apps given (copied), the first being the default', async (t) => {
  const plain = createState({})
  t.equal(plain.first.appid, DEV_APPID)
  t.same(plain.apps, [plain.first])
  const given = [A, B]
  const s = createState({ appid: 'ignored', apps: given })
  t.same(s.apps, [A, B])
  t.not(s.apps[0], A, 'a copy')
  t.equal(s.first.appid, A.appid)
  t.equal(s.secrets.get(B.appid), B.secret)
})

test('users: an openid per mini program, one unionid, the last session_key by user or by openid', async (t) => {
  const s = createState({ apps: [A, B] })
  t.not(s.openidOf('alice', B.appid), s.openidOf('alice'))
  t.equal(s.openidOf('alice', A.appid), s.openidOf('alice'))
  t.not(s.unionidOf('alice'), s.unionidOf('bob'))
  t.equal(s.sessionKeyOf('alice'), undefined)
  t.throws(() => s.encryptFor('alice', {}), /alice.*no session_key.*log in first/)
  const openid = s.openidOf('alice', B.appid)
  const first = s.issueSessionKey(B.appid, openid)
  const second = s.issueSessionKey(B.appid, openid)
  t.not(second, first, 'a new one replaces the last')
  t.equal(s.sessionKeyOf('alice', B.appid), second)
  t.equal(s.sessionKeyOfOpenid(B.appid, openid), second)
  t.equal(s.sessionKeyOf('alice'), undefined, 'not in the other mini program')
  t.match(s.encryptFor('alice', { a: 1 }, B.appid), { rawData: '{"a":1}', signature: /^[0-9a-f]{40}$/ })
})

test('one-time codes: each is used once; firstTry is true once per code; login and phone codes apart', async (t) => {
  const s = createState({})
  t.equal(s.loginCodes.firstTry('busy.1'), true)
  t.equal(s.loginCodes.firstTry('busy.1'), false)
  t.equal(s.loginCodes.firstTry('busy.2'), true)
  t.equal(s.loginCodes.isUsed('alice.1'), false)
  s.loginCodes.use('alice.1')
  t.equal(s.loginCodes.isUsed('alice.1'), true)
  t.equal(s.phoneCodes.isUsed('alice.1'), false)
  t.equal(s.phoneCodes.firstTry('busy.1'), true)
})

test('access_tokens: one current per appid, renewed in its last 5 minutes, refused once expired or revoked', async (t) => {
  let clock = T0
  const s = createState({ apps: [A, B], tokenTtlSec: 600, now: () => clock })
  const a = s.tokens.stable(A.appid, false)
  t.equal(a.expiresIn, 600)
  t.same(s.tokens.check(a.token), { appid: A.appid }, 'a token acts for the appid that obtained it')
  t.equal(s.tokens.currentOf(B.appid), undefined)
  clock += 200 * SECOND
  t.same(s.tokens.stable(A.appid, false), { token: a.token, expiresIn: 400 })
  clock += 101 * SECOND
  const renewed = s.tokens.stable(A.appid, false)
  t.not(renewed.token, a.token)
  t.equal(s.tokens.currentOf(A.appid), renewed.token)
  clock = T0 + 600 * SECOND
  t.match(s.tokens.check(a.token), { errcode: 42001 })
  t.match(s.tokens.check('nope'), { errcode: 40001 })
  s.tokens.invalidate(A.appid)
  t.match(s.tokens.check(renewed.token), { errcode: 40001 })
  t.equal(s.tokens.currentOf(A.appid), undefined)
})
