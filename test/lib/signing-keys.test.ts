// Asymmetric access tokens: ES256 and EdDSA signed here verify with jose (a library other services
// use) against the public JWKS, across a key rotation; keys parse from PEM and JWK forms.
import { generateKeyPairSync } from 'node:crypto'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { test } from 'tap'
import { createAccessTokens } from '../../lib/access-tokens.js'
import { fitsAlgorithm, kidOf, parsePrivateKey, parsePublicKeys, publicJwk } from '../../lib/signing-keys.js'
import { createMemoryStore } from '../../lib/store/memory.js'

const APPID = 'wx0123456789abcdef'
const es256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' })
const ed25519 = () => generateKeyPairSync('ed25519')
const base = { secret: 'unused-for-asymmetric-0123456789abcdef', issuer: 'iss', ttlSec: 60, appids: [APPID], store: createMemoryStore() }
const input = { aud: APPID, sub: 'u1', openid: 'o1', sid: 'AAAAAAAAAAAA' }

for (const [algorithm, make] of [['ES256', es256], ['EdDSA', ed25519]] as const) {
  test(`${algorithm}: tokens verify with jose against the JWKS, here too; HS256 and other keys do not`, async (t) => {
    const { privateKey } = make()
    const tokens = createAccessTokens({ ...base, signing: { algorithm, privateKey } })
    const { token } = tokens.sign(input)
    const jwks = tokens.publicKeys()
    t.equal(jwks.keys.length, 1)
    t.match(jwks.keys[0], { kid: publicJwk(privateKey, algorithm).kid, alg: algorithm, use: 'sig' })
    t.notOk('d' in (jwks.keys[0] as object), 'never the private part')
    t.equal(kidOf(token), jwks.keys[0]?.kid, 'the header names the key')
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks as never), { issuer: 'iss', audience: APPID, algorithms: [algorithm] })
    t.match(payload, { sub: 'u1', openid: 'o1', aud: APPID })
    t.equal(protectedHeader.alg, algorithm)
    t.match(tokens.verify(token), { sub: 'u1' })
    const hs = createAccessTokens(base).sign(input).token
    t.throws(() => tokens.verify(hs), { code: 'AUTH_TOKEN_INVALID' }, 'an HS256 token is refused')
    const stranger = createAccessTokens({ ...base, signing: { algorithm, privateKey: make().privateKey } }).sign(input).token
    t.throws(() => tokens.verify(stranger), { code: 'AUTH_TOKEN_INVALID' }, 'a token of an unknown key is refused')
  })
}

test('a rotation: the new key signs, the old one keeps verifying its tokens, both are in the JWKS', async (t) => {
  const old = es256()
  const next = es256()
  const before = createAccessTokens({ ...base, signing: { algorithm: 'ES256', privateKey: old.privateKey } })
  const oldToken = before.sign(input).token
  const after = createAccessTokens({ ...base, signing: { algorithm: 'ES256', privateKey: next.privateKey, previousPublicKeys: [old.publicKey] } })
  const newToken = after.sign(input).token
  const jwks = after.publicKeys()
  t.same(jwks.keys.map((k) => k.kid), [publicJwk(next.privateKey, 'ES256').kid, publicJwk(old.publicKey, 'ES256').kid], 'current first, then the previous')
  const keySet = createLocalJWKSet(jwks as never)
  for (const token of [oldToken, newToken]) {
    t.match((await jwtVerify(token, keySet, { issuer: 'iss', audience: APPID })).payload, { sub: 'u1' })
    t.match(after.verify(token), { sub: 'u1' })
  }
  t.not(kidOf(oldToken), kidOf(newToken))
  const dropped = createAccessTokens({ ...base, signing: { algorithm: 'ES256', privateKey: next.privateKey } })
  t.throws(() => dropped.verify(oldToken), { code: 'AUTH_TOKEN_INVALID' }, 'once the old key is removed, its tokens are refused')
})

test('the signing key\'s own public key, or a key twice, among the previous ones: each kid once in the JWKS, and jose verifies', async (t) => {
  const old = es256()
  const next = es256()
  const tokens = createAccessTokens({ ...base, signing: { algorithm: 'ES256', privateKey: next.privateKey, previousPublicKeys: [next.publicKey, old.publicKey, old.publicKey] } })
  const jwks = tokens.publicKeys()
  t.same(jwks.keys.map((k) => k.kid), [publicJwk(next.privateKey, 'ES256').kid, publicJwk(old.publicKey, 'ES256').kid])
  t.match((await jwtVerify(tokens.sign(input).token, createLocalJWKSet(jwks as never), { issuer: 'iss', audience: APPID })).payload, { sub: 'u1' })
})

test('keys parse from PEM (newlines escaped or not) and JWK; a wrong kind is told apart; errors never hold the key', async (t) => {
  const { privateKey, publicKey } = es256()
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const kid = publicJwk(privateKey, 'ES256').kid
  t.equal(publicJwk(parsePrivateKey(pem), 'ES256').kid, kid)
  t.equal(publicJwk(parsePrivateKey(pem.replaceAll('\n', '\\n')), 'ES256').kid, kid, 'escaped newlines, as in a .env file')
  t.equal(publicJwk(parsePrivateKey(JSON.stringify(privateKey.export({ format: 'jwk' }))), 'ES256').kid, kid)
  const other = es256().publicKey
  const pems = [publicKey, other].map((k) => k.export({ type: 'spki', format: 'pem' }).toString()).join('')
  t.same(parsePublicKeys(pems).map((k) => publicJwk(k, 'ES256').kid), [kid, publicJwk(other, 'ES256').kid], 'PEM blocks one after another')
  t.equal(parsePublicKeys(JSON.stringify({ keys: [publicKey.export({ format: 'jwk' })] })).length, 1, 'a JWKS')
  t.equal(parsePublicKeys(JSON.stringify([publicKey.export({ format: 'jwk' })])).length, 1, 'a JSON array')
  t.ok(fitsAlgorithm(privateKey, 'ES256'))
  t.notOk(fitsAlgorithm(privateKey, 'EdDSA'))
  t.notOk(fitsAlgorithm(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, 'ES256'), 'P-384 is not ES256')
  t.ok(fitsAlgorithm(ed25519().privateKey, 'EdDSA'))
  const broken = pem.slice(0, 80)
  t.throws(() => parsePrivateKey(broken), { message: 'not a private key in PEM or JWK form' })
  t.throws(() => parsePublicKeys('nothing'), { message: 'not public keys in PEM or JWK form' })
  t.throws(() => parsePublicKeys('{"keys":null}'), { message: 'not public keys in PEM or JWK form' }, 'a JWKS whose keys are no list')
  t.equal(kidOf('not-a-token'), undefined)
})

test('a private key among the public ones is refused, named by its place, never shown: the variable is kept as public', async (t) => {
  const { privateKey, publicKey } = es256()
  const spki = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const privateForms: Array<[string, string]> = [
    ['PKCS#8 PEM', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
    ['SEC1 PEM', privateKey.export({ type: 'sec1', format: 'pem' }).toString()],
    ['Ed25519 PEM', ed25519().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()]
  ]
  for (const [what, pem] of privateForms) {
    const secret = pem.split('\n')[1] as string
    const err = (() => { try { parsePublicKeys(`${spki}${pem}`); return null } catch (e) { return e as Error } })()
    t.match(err, { message: /^key 2 of 2 is a private key: give its public key only/ }, what)
    t.notOk(String(err?.message).includes(secret), `${what}: no key material in the message`)
    t.throws(() => parsePublicKeys(pem.replaceAll('\n', '\\n')), { message: /^key 1 of 1 is a private key/ }, `${what}, newlines escaped`)
  }
  const jwk = privateKey.export({ format: 'jwk' })
  t.throws(() => parsePublicKeys(JSON.stringify(jwk)), { message: /^key 1 of 1 is a private key/ }, 'a JWK with "d"')
  t.throws(() => parsePublicKeys(JSON.stringify({ keys: [publicKey.export({ format: 'jwk' }), jwk] })), { message: /^key 2 of 2 is a private key/ }, 'in a JWKS')
  const message = (() => { try { parsePublicKeys(JSON.stringify([jwk])); return '' } catch (e) { return (e as Error).message } })()
  t.match(message, /^key 1 of 1 is a private key/, 'in a JSON array')
  t.notOk(message.includes(jwk.d as string), 'never the private part')
  t.equal(parsePublicKeys(spki).length, 1, 'the public key alone is taken')
})
