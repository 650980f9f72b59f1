// Redis memory per session: logs distinct users in and refreshes their sessions through lib/sessions.ts,
// the flows the gateway runs, against Redis; WeChat answers with ids shaped like its own.
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { createAccessTokens } from '../lib/access-tokens.js'
import { digest } from '../lib/ids.js'
import { createSessions } from '../lib/sessions.js'
import { connectRedis } from '../lib/store/redis-client.js'
import { createMemoryStore } from '../lib/store/memory.js'
import { createRedisStore } from '../lib/store/redis.js'
import { APPID } from './processes.js'

/** Refreshes per session for the second memory measure (generations reach two digits). */
export const MEMORY_ROTATIONS = 12

export interface MemoryResult {
  sessions: number
  /** Sessions of each user. */
  perUser: number
  bytesPerSession: number
  keysPerSession: number
  /** Bytes per session after one rotation, and after MEMORY_ROTATIONS of them. */
  bytesAfterOneRotation: number
  bytesAfterManyRotations: number
  /** Bytes per session once each has also stepped up (a fresh code, its time kept in the session). */
  bytesAfterStepUp: number
}

const userOf = (code: string): string => code.split('.')[0] ?? code

// What a phone says about itself through the gateway: cut to the stored bounds like any other.
const DEVICE = {
  deviceName: 'iPhone 15 Pro<iPhone16,1>',
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.43'
}

const usedMemory = async (admin: Redis): Promise<number> => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])

function benchSessions (store: ReturnType<typeof createRedisStore>): ReturnType<typeof createSessions> {
  const secret = 'bench-secret-0123456789abcdefghij'
  // Login codes are remembered for 10 minutes, not for a session's life: they are claimed in process
  // memory here, so that Redis holds sessions only (100,000 code keys, even deleted, would leave the
  // keyspace's table twice as large and add ~20 bytes to every session's figure).
  const codes = createMemoryStore()
  return createSessions({
    store: { ...store, claimCode: codes.claimCode, settleCode: codes.settleCode },
    // Shaped like WeChat's: 28-character openid and unionid, 24-character session_key.
    wechat: {
      appids: [APPID],
      appOf: () => APPID,
      // A code is `<user>.<n>`: the same user for every n.
      code2Session: async (code) => ({
        openid: `o${digest(`openid-${userOf(code)}`)}${digest(`o2-${userOf(code)}`)}`.slice(0, 28),
        unionid: `u${digest(`unionid-${userOf(code)}`)}${digest(`u2-${userOf(code)}`)}`.slice(0, 28),
        sessionKey: randomBytes(16).toString('base64')
      })
    },
    tokens: createAccessTokens({ secret, issuer: 'bench', ttlSec: 900, appids: [APPID], store }),
    config: { jwtSecret: secret, JWT_SECRET_PREVIOUS: undefined, REFRESH_TOKEN_TTL: 2_592_000, SESSION_MAX_AGE: 7_776_000, REFRESH_GRACE_SECONDS: 10 },
    log: { warn: () => {} }
  })
}

/**
 * Flushes the Redis at `redisUrl`, then measures `count` sessions, `perUser` to a user, each with
 * its device recorded: new, refreshed once, refreshed MEMORY_ROTATIONS times.
 */
export async function memoryPerSession (redisUrl: string, count: number, perUser = 1): Promise<MemoryResult> {
  const admin = new Redis(redisUrl)
  await admin.flushall()
  const before = await usedMemory(admin)
  const client = await connectRedis({ url: redisUrl, timeoutMs: 5000 })
  const store = createRedisStore({ client, keyPrefix: 'wxauth:', timeoutMs: 5000, ownsClient: true })
  const sessions = benchSessions(store)
  const tokens: string[] = []
  const users: Array<{ openid: string, sid: string }> = []
  const parallel = async (fn: (i: number) => Promise<void>): Promise<void> => {
    let next = 0
    await Promise.all(Array.from({ length: 50 }, async () => { while (next < count) await fn(next++) }))
  }
  await parallel(async (i) => {
    const device = { ...DEVICE, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }
    const pair = await sessions.login(`${Math.floor(i / perUser)}.${i}`, undefined, device)
    tokens[i] = pair.refreshToken
    // A refresh token is <version>.<session id>.<secret>: the session a step-up names.
    users[i] = { openid: pair.openid, sid: pair.refreshToken.split('.')[1] as string }
  })
  const fresh = await usedMemory(admin)
  const keys = await admin.dbsize()
  const rotateAll = async (): Promise<void> => {
    await parallel(async (i) => { tokens[i] = (await sessions.refresh(tokens[i] as string)).refreshToken })
  }
  await rotateAll()
  const once = await usedMemory(admin)
  for (let r = 1; r < MEMORY_ROTATIONS; r++) await rotateAll()
  const full = await usedMemory(admin)
  await parallel(async (i) => {
    const { openid, sid } = users[i] as { openid: string, sid: string }
    await sessions.stepUp({ aud: APPID, sub: openid, openid, sid, jti: 'bench', iat: 0, exp: 0, iss: 'bench' }, `${Math.floor(i / perUser)}.s${i}`)
  })
  const steppedUp = await usedMemory(admin)
  await store.close()
  admin.disconnect()
  const per = (bytes: number): number => Math.round((bytes - before) / count)
  return { sessions: count, perUser, bytesPerSession: per(fresh), keysPerSession: keys / count, bytesAfterOneRotation: per(once), bytesAfterManyRotations: per(full), bytesAfterStepUp: per(steppedUp) }
}
