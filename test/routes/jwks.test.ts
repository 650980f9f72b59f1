// GET /.well-known/jwks.json with ES256 and EdDSA: another service verifies the gateway's tokens with
// jose against the JWKS it fetches over HTTP, across a key rotation (the documented steps, each a rolling
// update); the gateway keeps accepting the old key's tokens until they expire; HS256 serves no JWKS; key configuration errors are refused at boot.
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose'
import type { FastifyInstance } from 'fastify'
import { test } from 'tap'
import { loadConfig, resolveConfig } from '../../lib/config.js'
import { bearer, buildApp, login, me, refresh, startRedis, startSim } from '../helper.js'

const pem = (key: import('node:crypto').KeyObject, type: 'pkcs8' | 'spki'): string => key.export({ type, format: 'pem' }).toString()

async function listening (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

test('ES256 across a rotation: jose verifies both keys\' tokens with the served JWKS; the gateway accepts both; refresh tokens carry over', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const oldKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const newKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const before = await buildApp(t, { sim, redisServer: redis, config: { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pem(oldKey.privateKey, 'pkcs8') } })
  const oldPair = await login(before, 'rota.1')
  // The next deployment: a new key signs, the old one's public key still verifies.
  const after = await buildApp(t, {
    sim,
    redisServer: redis,
    config: { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pem(newKey.privateKey, 'pkcs8').replaceAll('\n', '\\n'), JWT_PREVIOUS_PUBLIC_KEYS: pem(oldKey.publicKey, 'spki') }
  })
  const newPair = await login(after, 'rota.2')
  const base = await listening(after)
  const res = await fetch(`${base}/.well-known/jwks.json`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('cache-control'), 'public, max-age=300')
  const jwks = await res.json() as { keys: Array<Record<string, unknown>> }
  t.equal(jwks.keys.length, 2, 'the signing key, then the previous one')
  t.notOk(JSON.stringify(jwks).includes('"d"'), 'no private part')
  const keySet = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`))
  for (const [name, pair] of [['old key', oldPair], ['new key', newPair]] as const) {
    const { payload, protectedHeader } = await jwtVerify(pair.accessToken, keySet, { issuer: after.wechatAuthConfig.JWT_ISSUER, audience: after.wechat.appid, algorithms: ['ES256'] })
    t.equal(payload.openid, pair.openid, `${name}: jose verifies it`)
    t.equal(protectedHeader.alg, 'ES256')
    t.equal((await me(after, pair.accessToken)).statusCode, 200, `${name}: the gateway accepts it`)
  }
  const renewed = await refresh(after, oldPair.refreshToken)
  t.equal(renewed.statusCode, 200, 'a refresh token of before the rotation works (JWT_SECRET is unchanged)')
  t.match((await jwtVerify(renewed.json().accessToken, keySet)).protectedHeader, { kid: jwks.keys[0]?.kid }, 'and gets a token of the new key')
  const dropped = await buildApp(t, { sim, redisServer: redis, config: { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pem(newKey.privateKey, 'pkcs8') } })
  const refused = await me(dropped, oldPair.accessToken)
  t.equal(refused.json().code, 'AUTH_TOKEN_INVALID', 'once the old key is no longer configured, its tokens are refused')
})

test('the documented rotation, each step a rolling update: instances of before and after accept each other\'s tokens, and a JWKS cached from before verifies the tokens of after', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const [k1, k2] = [generateKeyPairSync('ec', { namedCurve: 'P-256' }), generateKeyPairSync('ec', { namedCurve: 'P-256' })]
  const gateway = async (signing: KeyObject, accepted: KeyObject[]): Promise<FastifyInstance> => await buildApp(t, {
    sim,
    redisServer: redis,
    config: { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pem(signing, 'pkcs8'), ...(accepted.length > 0 ? { JWT_PREVIOUS_PUBLIC_KEYS: accepted.map((k) => pem(k, 'spki')).join('') } : {}) }
  })
  // docs/operations.md, "Rotating without downtime".
  const steps: Array<[string, FastifyInstance]> = [
    ['before', await gateway(k1.privateKey, [])],
    ['1 (the new key published)', await gateway(k1.privateKey, [k2.publicKey])],
    ['2 (the new key signs)', await gateway(k2.privateKey, [k1.publicKey])],
    ['3 (the old key removed)', await gateway(k2.privateKey, [])]
  ]
  const claims = { issuer: steps[0]?.[1].wechatAuthConfig.JWT_ISSUER as string, audience: sim.appid, algorithms: ['ES256'] }
  let n = 0
  for (const [i, [name, to]] of steps.entries()) {
    if (i === 0) continue
    const [fromName, from] = steps[i - 1] as [string, FastifyInstance]
    const cached = createLocalJWKSet((await from.inject('/.well-known/jwks.json')).json())
    const [fromPair, toPair] = [await login(from, `rota.${++n}`), await login(to, `rota.${++n}`)]
    t.equal((await me(from, toPair.accessToken)).statusCode, 200, `step ${name}: its token on an instance still at ${fromName}`)
    t.equal((await me(to, fromPair.accessToken)).statusCode, 200, `step ${name}: a token of ${fromName} on an updated instance`)
    await t.resolves(jwtVerify(toPair.accessToken, cached, claims), `step ${name}: its token verifies with the JWKS a service cached at ${fromName}`)
  }
  // Signing with the new key at once (step 2 without step 1): an instance not yet updated refuses its tokens.
  const early = await login(steps[2]?.[1] as FastifyInstance, `rota.${++n}`)
  t.equal((await me(steps[0]?.[1] as FastifyInstance, early.accessToken)).json().code, 'AUTH_TOKEN_INVALID', 'without step 1, a roll refuses tokens (the client logs in again)')
})

test('EdDSA works the same; HS256 (the default) serves no JWKS; the path can move', async (t) => {
  const redis = await startRedis(t)
  const sim = await startSim(t)
  const ed = generateKeyPairSync('ed25519')
  const app = await buildApp(t, { sim, redisServer: redis, jwksPath: '/keys.json', config: { JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: JSON.stringify(ed.privateKey.export({ format: 'jwk' })) } })
  const pair = await login(app, 'eddie.1')
  const base = await listening(app)
  const { protectedHeader } = await jwtVerify(pair.accessToken, createRemoteJWKSet(new URL(`${base}/keys.json`)))
  t.equal(protectedHeader.alg, 'EdDSA')
  t.equal((await app.inject('/keys.json?nocache=1700000000000')).statusCode, 200, 'a fetcher\'s cache-buster is ignored, not refused')
  t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(pair.accessToken) })).statusCode, 200)
  const hs = await buildApp(t, { sim, redisServer: redis })
  t.equal((await hs.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode, 404, 'HS256: no public keys to serve')
})

test('key configuration is checked at boot; messages never hold a key; production never makes one', async (t) => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const resolve = (values: Record<string, string>, production = false) =>
    resolveConfig(loadConfig(false, { ...values, ...(production ? { NODE_ENV: 'production', JWT_SECRET: 'a-very-long-and-varied-secret-0123456789abcdef', WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'secret-0123456789abcdef', REDIS_URL: 'redis://127.0.0.1:1' } : {}) }), { hasRedisClient: false })
  const secretPart = pem(ec.privateKey, 'pkcs8').split('\n')[2] as string
  const cases: Array<[Record<string, string>, boolean, RegExp]> = [
    [{ JWT_ALGORITHM: 'ES256' }, true, /production with JWT_ALGORITHM=ES256 requires JWT_PRIVATE_KEY/],
    [{ JWT_PRIVATE_KEY: pem(ec.privateKey, 'pkcs8') }, false, /need JWT_ALGORITHM=ES256 or EdDSA/],
    [{ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: pem(ec.privateKey, 'pkcs8') }, false, /JWT_PRIVATE_KEY is not an Ed25519 key/],
    [{ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: `${pem(ec.privateKey, 'pkcs8').slice(0, 60)}broken-key-material` }, false, /^Invalid configuration: JWT_PRIVATE_KEY: not a private key in PEM or JWK form$/],
    [{ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pem(ec.privateKey, 'pkcs8'), JWT_PREVIOUS_PUBLIC_KEYS: pem(generateKeyPairSync('ed25519').publicKey, 'spki') }, false, /JWT_PREVIOUS_PUBLIC_KEYS must be ES256 keys/],
    [{ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pem(ec.privateKey, 'pkcs8'), JWT_PREVIOUS_PUBLIC_KEYS: 'x'.repeat(40) }, false, /JWT_PREVIOUS_PUBLIC_KEYS: not public keys/],
    // The old private key where its public key belongs: refused, not silently derived.
    [{ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'pkcs8'), JWT_PREVIOUS_PUBLIC_KEYS: pem(ec.privateKey, 'pkcs8') }, true, /^Invalid configuration: JWT_PREVIOUS_PUBLIC_KEYS: key 1 of 1 is a private key/]
  ]
  for (const [values, production, message] of cases) {
    const err = (() => { try { resolve(values, production); return null } catch (e) { return e as Error & { code?: string } } })()
    t.match(err, { code: 'CONFIG_INVALID', message }, message.source)
    t.notOk(String(err?.message).includes(secretPart), 'no key material in the message')
  }
  const dev = resolve({ JWT_ALGORITHM: 'ES256' })
  t.equal(dev.signing?.algorithm, 'ES256', 'development makes a key')
  t.match(dev.devDefaults.join('\n'), /no JWT_PRIVATE_KEY: a ES256 key was made for this process/, 'and says so at boot')
  t.equal(resolve({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pem(ec.privateKey, 'pkcs8') }, true).signing?.algorithm, 'ES256', 'production with a key boots')
})
