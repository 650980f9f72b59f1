// The layout is written once (lib/store/redis-layout.ts): the Lua readers and writers generated from
// it must agree with the TypeScript ones, in a real Redis.
import { createClient } from '@redis/client'
import { test } from 'tap'
import {
  ACCESS_FIELD, BAN_FIELD, BLACKLIST_PREFIX, DEVICE_BYTES, deviceParts, SERVICE_BANS_FIELD, packAccess, unpackAccess, unpackServiceBans, SEP, SESSION_FIELDS, blacklistField, keyNames, packCredential, sessionField, storedSub, subOf, unpack, unpackCredential
} from '../../../lib/store/redis-layout.js'
import { LUA_LAYOUT } from '../../../lib/store/redis-lua-layout.js'
import { deliversNow } from '../../../lib/store/redis-access-check.js'
import { startRedis } from '../../helper.js'

type Field = keyof typeof SESSION_FIELDS

test('what Lua packs, TypeScript unpacks, and the other way round', async (t) => {
  const redis = await startRedis(t)
  const client = createClient({ url: redis.url })
  await client.connect()
  t.teardown(async () => { await client.close() })
  const lua = async (body: string, args: string[]): Promise<unknown> => await client.sendCommand(['EVAL', LUA_LAYOUT + body, '0', ...args])
  for (const field of Object.keys(SESSION_FIELDS) as Field[]) {
    const parts = SESSION_FIELDS[field].parts.map((name) => `${name}-value`)
    const packed = await lua(`return pack_${field}(unpack(ARGV))`, parts) as string
    t.same(Object.values(unpack(field, packed)), parts, `${field}: Lua's pack reads back in TypeScript`)
    t.same(await lua(`return {unpack_${field}(ARGV[1])}`, [parts.join(SEP)]), [...parts, ''], `${field}: TypeScript's value reads in Lua, nothing left over`)
    const userField = { ban: BAN_FIELD, access: ACCESS_FIELD, serviceBans: SERVICE_BANS_FIELD } as const
    if (field === 'ban' || field === 'access' || field === 'serviceBans') {
      t.equal(await lua(`return ${field.toUpperCase()}_FIELD`, []), userField[field], `${field}: one field of the user`)
      t.equal(userField[field][0], '!', 'user fields start with !, which no session id holds (revokeUser keeps them)')
    } else t.equal(await lua(`return ${field}Field(ARGV[1])`, ['sid']), sessionField('sid', field))
  }
  t.equal(await lua("return pack_hot('1', 'd', '0', '')", []), `1${SEP}d`, 'generation 0 is left out')
  t.same(unpack('hot', `1${SEP}d`), { expiresAt: '1', refreshDigest: 'd', generation: '', delivered: '' })
  t.equal(await lua("return pack_hot('1', 'd', '7', '')", []), `1${SEP}d${SEP}7`, 'delivered is left out until marked')
  t.equal(await lua("return pack_hot('1', 'd', '7', '7')", []), `1${SEP}d${SEP}7${SEP}7`)
  t.same([deliversNow(`1${SEP}d${SEP}7`, 7), deliversNow(`1${SEP}d${SEP}7${SEP}6`, 7), deliversNow(`1${SEP}d${SEP}7${SEP}7`, 7),
    deliversNow(`1${SEP}d${SEP}7`, 6), deliversNow(`1${SEP}d${SEP}17`, 7), deliversNow(`1${SEP}d`, 0), deliversNow(`1${SEP}d`, 1)],
  [true, true, false, false, false, false, false], 'a check marks only the current generation, not yet marked')
  t.same(await lua('return {unpack_identity(ARGV[1])}', [`o${SEP}u${SEP}extra${SEP}more`]), ['o', 'u', 'extra'], 'parts stop at SEP; what is left over shows')
  t.same(await lua("return {subOf('', 'o'), subOf('s', 'o'), storedSub('o', 'o'), storedSub('s', 'o')}", []),
    [subOf('', 'o'), subOf('s', 'o'), storedSub('o', 'o'), storedSub('s', 'o')], 'the sub rule is the same in both')
  t.same([subOf('', 'o'), storedSub('o', 'o')], ['o', ''], 'an empty stored sub is the openid')
  t.equal(await lua('return BLACKLIST_PREFIX .. ARGV[1]', ['jti']), blacklistField('jti'))
  t.equal(blacklistField('j'), `${BLACKLIST_PREFIX}j`)
})

test('roles and permissions, and service bans, read back as written', async (t) => {
  const access = { roles: ['admin', 'ops'], permissions: ['order:*', 'user:read'] }
  t.same(unpackAccess(packAccess(access)), access)
  t.same(unpackAccess(packAccess({ roles: [], permissions: ['p'] })), { roles: [], permissions: ['p'] })
  t.equal(packAccess({ roles: [], permissions: [] }), '', 'none of either: nothing stored')
  t.same(unpackAccess(null), { roles: [], permissions: [] })
  t.same(unpackServiceBans(['pay', '0', 'fraud', 'chat', '1700000000000', 'spam'].join(SEP)),
    [{ service: 'pay', until: null, reason: 'fraud' }, { service: 'chat', until: 1700000000000, reason: 'spam' }], '0 is for good')
  t.same(unpackServiceBans(null), [])
})

test('credentials keep a value that holds the separator; keys carry the prefix and hash tags', async (t) => {
  const credential = { expiresAt: 2, refreshAt: 1, value: `a${SEP}b` }
  t.same(unpackCredential(packCredential(credential)), credential)
  const keys = keyNames('p:')
  t.same([keys.user('t'), keys.code('c'), keys.rateLimit, keys.credential('wx'), keys.credentialLock('wx'), keys.openid('wx1', 'o')],
    ['p:{t}', 'p:c:c', 'p:rl:', 'p:at:{wx}', 'p:atl:{wx}', 'p:oid:wx1:o'])
})

test('a device\'s parts stay within DEVICE_BYTES with a full IPv6 address: the name gets the room the type and IP leave', async (t) => {
  const ip = '2408:8207:2466:3e90:a1b2:c3d4:e5f6:1234'
  for (const deviceType of ['mp', 'app', 'web']) {
    const parts = deviceParts({ deviceType, deviceName: 'Xiaomi 14 Ultra Pro!', ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.49' })
    t.ok(Buffer.byteLength(parts.join(SEP)) <= DEVICE_BYTES, `${deviceType}: ${Buffer.byteLength(parts.join(SEP))} bytes`)
    t.same([parts[0], parts[2]], [deviceType, ip], 'type and IP whole')
  }
  // The longest type DEVICE_TYPES takes and the longest IP text: past DEVICE_BYTES, never past Redis' 64-byte compact limit.
  const longest = deviceParts({ deviceType: 'abcdefgh', deviceName: 'Xiaomi 14 Ultra Pro!', ip: 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', userAgent: 'Mozilla/5.0' })
  t.same([Buffer.byteLength(longest.join(SEP)), longest[1], longest[3]], [56, '', ''], 'type and IP whole, name and user agent dropped')
  const v4 = deviceParts({ deviceType: 'mp', deviceName: 'Xiaomi 14 Ultra Pro!', ip: '203.0.113.7' })
  t.equal(v4[1], 'Xiaomi 14 Ultra Pro!', 'with an IPv4 address the name keeps its 20 bytes')
})
