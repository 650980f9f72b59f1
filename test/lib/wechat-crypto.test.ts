import { createCipheriv, createHmac, randomBytes } from 'node:crypto'
import { test } from 'tap'
import { decryptUserData, sessionKeySignature, verifyUserSignature } from '../../lib/wechat-crypto.js'

// WeChat's published examples (its mini-program docs; also in the tests of WxJava, wechatpy, ...).
const APPID = 'wx4f4bc4dec97d474b'
const SESSION_KEY = 'tiihtNczf5v6AKRyjwEUhQ=='
const IV = 'r7BXXKkLb8qrSNn05n0qiA=='
const ENCRYPTED = 'CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+' +
  '3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6' +
  '/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs' +
  '8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns' +
  '/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG' +
  '20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=='
const RAW_DATA = '{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}'
const RAW_SESSION_KEY = 'HyVFkGl5F5OQWJZZaNzBBg=='
const RAW_SIGNATURE = '75e81ceda165f4ffa64f4068af58c64b8f54b88c'

const encrypt = (plain: string, key = randomBytes(16), iv = randomBytes(16)): { sessionKey: string, iv: string, encryptedData: string } => {
  const c = createCipheriv('aes-128-cbc', key, iv)
  return { sessionKey: key.toString('base64'), iv: iv.toString('base64'), encryptedData: Buffer.concat([c.update(plain), c.final()]).toString('base64') }
}

test('decryptUserData decrypts WeChat\'s published example', async (t) => {
  const data = decryptUserData({ sessionKey: SESSION_KEY, encryptedData: ENCRYPTED, iv: IV, appid: APPID })
  t.match(data, {
    openId: 'oGZUI0egBJY1zhBYw2KhdUfwVJJE',
    nickName: 'Band',
    unionId: 'ocMvos6NjeKLIBqg5Mr9QjxrP1FA',
    watermark: { timestamp: 1477314187, appid: APPID }
  })
})

test('decryptUserData repairs + turned into spaces', async (t) => {
  const spaced = { sessionKey: SESSION_KEY.replace(/\+/g, ' '), encryptedData: ENCRYPTED.replace(/\+/g, ' '), iv: IV, appid: APPID }
  t.ok(ENCRYPTED.includes('+'))
  t.match(decryptUserData(spaced), { nickName: 'Band' })
})

test('decryptUserData refuses malformed input with WX_DECRYPT_FAILED (400)', async (t) => {
  const good = { sessionKey: SESSION_KEY, encryptedData: ENCRYPTED, iv: IV, appid: APPID }
  const cases: Array<[string, Record<string, unknown>]> = [
    ['bad base64', { encryptedData: 'not*base64!' }],
    ['base64 with bad length', { encryptedData: 'abc' }],
    ['empty data', { encryptedData: '' }],
    ['ciphertext not a multiple of 16 bytes', { encryptedData: Buffer.alloc(20).toString('base64') }],
    ['short iv', { iv: Buffer.alloc(8).toString('base64') }],
    ['long key', { sessionKey: Buffer.alloc(32).toString('base64') }],
    ['not a string', { iv: 42 }],
    ['missing', { sessionKey: undefined }],
    ['another mini program', { appid: 'wx0000000000000000' }]
  ]
  for (const [name, over] of cases) {
    t.throws(() => decryptUserData({ ...good, ...over } as never), { code: 'WX_DECRYPT_FAILED', statusCode: 400 }, name)
  }
  t.throws(() => decryptUserData(undefined as never), { code: 'WX_DECRYPT_FAILED' })
})

test('decryptUserData says WX_SESSION_KEY_STALE (401) for data made with another key', async (t) => {
  const other = { sessionKey: randomBytes(16).toString('base64'), encryptedData: ENCRYPTED, iv: IV, appid: APPID }
  t.throws(() => decryptUserData(other), { code: 'WX_SESSION_KEY_STALE', statusCode: 401 })
  // Well-padded but not JSON, or JSON but not an object: also not ours.
  for (const plain of ['not json at all', '[1,2,3]', 'null']) {
    const e = encrypt(plain)
    t.throws(() => decryptUserData({ ...e, appid: APPID }), { code: 'WX_SESSION_KEY_STALE' }, plain)
  }
  const e = encrypt(JSON.stringify({ openId: 'o1', watermark: { appid: APPID, timestamp: 1 } }))
  t.match(decryptUserData({ ...e, appid: APPID }), { openId: 'o1' }, 'a fresh round trip works')
})

test('decrypted data nested deeper than 32 levels is WX_DECRYPT_FAILED: the answer\'s serialiser would overflow its stack', async (t) => {
  // Written as text: JSON.stringify itself would overflow on the deepest.
  const deep = (levels: number): string => `{"watermark":{"appid":"${APPID}","timestamp":1},"x":${'{"a":['.repeat(levels)}1${']}'.repeat(levels)}}`
  t.throws(() => decryptUserData({ ...encrypt(deep(6000)), appid: APPID }), { code: 'WX_DECRYPT_FAILED', message: /nested deeper than 32 levels/ }, 'within the body limit')
  t.throws(() => decryptUserData({ ...encrypt(deep(16)), appid: APPID }), { code: 'WX_DECRYPT_FAILED' }, '33 levels: objects and arrays both count')
  t.match(decryptUserData({ ...encrypt(deep(15)), appid: APPID }), { x: { a: [{ a: Array }] } }, '31 levels pass')
  const werun = { stepInfoList: [{ timestamp: 1, step: 100 }, { timestamp: 2, step: 200 }], watermark: { appid: APPID, timestamp: 1 } }
  t.same(decryptUserData({ ...encrypt(JSON.stringify(werun)), appid: APPID }), werun, 'WeChat\'s own shapes')
})

test('decryptUserData never throws anything but its two codes', async (t) => {
  for (let i = 0; i < 300; i++) {
    const input = {
      sessionKey: randomBytes(16).toString('base64'),
      iv: randomBytes(16).toString('base64'),
      encryptedData: randomBytes(16 * (1 + (i % 8))).toString('base64'),
      appid: APPID
    }
    try {
      decryptUserData(input)
      t.fail('random bytes decrypted')
    } catch (err) {
      if (!['WX_DECRYPT_FAILED', 'WX_SESSION_KEY_STALE'].includes((err as { code?: string }).code ?? '')) t.fail(String(err))
    }
  }
  t.pass('300 random inputs, only coded errors')
})

test('verifyUserSignature checks WeChat\'s published example in constant time', async (t) => {
  t.equal(verifyUserSignature({ rawData: RAW_DATA, sessionKey: RAW_SESSION_KEY, signature: RAW_SIGNATURE }), true)
  t.equal(verifyUserSignature({ rawData: RAW_DATA, sessionKey: RAW_SESSION_KEY, signature: RAW_SIGNATURE.toUpperCase() }), true, 'hex case does not matter')
  t.equal(verifyUserSignature({ rawData: RAW_DATA.replace('Band', 'Bond'), sessionKey: RAW_SESSION_KEY, signature: RAW_SIGNATURE }), false)
  t.equal(verifyUserSignature({ rawData: RAW_DATA, sessionKey: SESSION_KEY, signature: RAW_SIGNATURE }), false, 'another session_key')
  for (const signature of ['', RAW_SIGNATURE.slice(1), `${RAW_SIGNATURE}00`, 'z'.repeat(40)]) {
    t.equal(verifyUserSignature({ rawData: RAW_DATA, sessionKey: RAW_SESSION_KEY, signature }), false, JSON.stringify(signature))
  }
  t.equal(verifyUserSignature({ rawData: 1, sessionKey: RAW_SESSION_KEY, signature: RAW_SIGNATURE } as never), false)
})

test('sessionKeySignature is lowercase hex HMAC-SHA256 keyed with the session_key\'s ASCII bytes', async (t) => {
  // RFC-style known answers for HMAC-SHA256 with the ASCII key "key".
  t.equal(sessionKeySignature('key', 'The quick brown fox jumps over the lazy dog'), 'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8')
  t.equal(sessionKeySignature('key'), '5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0', 'the payload defaults to the empty string')
  const decodedKey = createHmac('sha256', Buffer.from(SESSION_KEY, 'base64')).update('').digest('hex')
  t.not(sessionKeySignature(SESSION_KEY), decodedKey, 'not keyed with the base64-decoded bytes (the trap two SDKs fell into)')
  t.match(sessionKeySignature(SESSION_KEY), /^[0-9a-f]{64}$/)
})
