// The client the gateway makes from its configuration (lib/store/redis-topology.ts), on real
// deployments: a setting at a server of another kind (REDIS_URL at a Sentinel, REDIS_SENTINELS at a
// server...) is refused at once with what to set instead;
// REDIS_CLUSTER_NODES and REDIS_SENTINELS serve logins and refreshes; the readiness probe writes for
// every part of the slots, so it fails on a read-only node and while a cluster slot has no master.
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'tap'
import { Redis } from 'ioredis'
import { disconnectClient } from '../../../lib/store/redis-client.js'
import { connectConfigured } from '../../../lib/store/redis-topology.js'
import { buildApp, freePort, killRedis, login, me, refresh, spawnRedisOnFreePort, startRedis, startSim } from '../../helper.js'
import { startClusterWithReplicas, startSentinelWithReplica, until } from '../../redis-deployments.js'

const TIMEOUT = { STORE_TIMEOUT_MS: 500 }

test('a setting at a server of another kind is refused at once, saying what to set: REDIS_URL at a Sentinel, a replica, a cluster node; REDIS_CLUSTER_NODES or REDIS_SENTINELS at a server', async (t) => {
  const sentinel = await startSentinelWithReplica(t)
  const cluster = await startClusterWithReplicas(t)
  const cases = [
    [sentinel.sentinels[0], /REDIS_URL points at a Sentinel.*set REDIS_SENTINELS .* and REDIS_SENTINEL_NAME/],
    [sentinel.replica, /REDIS_URL points at a replica, which cannot be written/],
    [cluster.masters[0], /REDIS_URL points at a node of a Redis Cluster.*set REDIS_CLUSTER_NODES/]
  ] as const
  for (const [port, message] of cases) {
    await t.rejects(connectConfigured({ ...TIMEOUT, REDIS_URL: `redis://127.0.0.1:${port}` }), { message })
  }
  const master = await connectConfigured({ ...TIMEOUT, REDIS_URL: `redis://127.0.0.1:${sentinel.master}` })
  t.ok(master, 'the master itself is taken')
  t.teardown(() => (master as { destroy: () => void }).destroy())

  // The other way round: REDIS_CLUSTER_NODES or REDIS_SENTINELS at a server of another kind.
  const others = [
    [{ REDIS_CLUSTER_NODES: `redis://127.0.0.1:${sentinel.master}` }, /^REDIS_CLUSTER_NODES points at a server without cluster mode: set REDIS_URL to it instead/],
    [{ REDIS_SENTINELS: `redis://127.0.0.1:${sentinel.master}`, REDIS_SENTINEL_NAME: 'm' }, /^REDIS_SENTINELS points at a Redis server, not a Sentinel: set REDIS_URL/],
    [{ REDIS_SENTINELS: `redis://127.0.0.1:${cluster.masters[0]}`, REDIS_SENTINEL_NAME: 'm' }, /^REDIS_SENTINELS points at a Redis server, not a Sentinel: .*REDIS_CLUSTER_NODES/]
  ] as const
  for (const [setting, message] of others) {
    const started = Date.now()
    await t.rejects(connectConfigured({ STORE_TIMEOUT_MS: 2000, ...setting }), { message })
    // Not the deadline of three STORE_TIMEOUT_MS (6 s), which retrying the wrong kind of server ran into.
    t.ok(Date.now() - started < 4000, `${Object.keys(setting)[0] ?? ''}: in ${Date.now() - started} ms, not at the deadline`)
  }
  // One wrong entry among good ones is not the whole setting: it boots.
  for (const setting of [
    { REDIS_CLUSTER_NODES: `redis://127.0.0.1:${sentinel.master},redis://127.0.0.1:${cluster.masters[0]}` },
    { REDIS_SENTINELS: `redis://127.0.0.1:${sentinel.master},redis://127.0.0.1:${sentinel.sentinels[0]}`, REDIS_SENTINEL_NAME: sentinel.name }
  ]) {
    const client = await connectConfigured({ STORE_TIMEOUT_MS: 2000, ...setting })
    t.ok(client, `${Object.keys(setting)[0] ?? ''}: a server listed first, then a good entry`)
    if (client !== null) disconnectClient(client)
  }
  // A sentinel not up yet, then a server: retried until the deadline (the sentinel may still come), not
  // told to use REDIS_URL because the last one tried was a server.
  const starting = await connectConfigured({ ...TIMEOUT, REDIS_SENTINELS: `redis://127.0.0.1:${await freePort()},redis://127.0.0.1:${sentinel.master}`, REDIS_SENTINEL_NAME: sentinel.name }).catch((err: Error) => err.message)
  t.match(starting, /^REDIS_SENTINELS: no master '.*' reachable within 1500 ms/)
})

test('REDIS_CLUSTER_NODES and REDIS_SENTINELS: the gateway logs in, refreshes and authenticates through them', async (t) => {
  const sim = await startSim(t)
  const cluster = await startClusterWithReplicas(t)
  const sentinel = await startSentinelWithReplica(t)
  const configs = {
    cluster: { REDIS_CLUSTER_NODES: `redis://127.0.0.1:${cluster.masters[1]}` },
    sentinel: { REDIS_SENTINELS: sentinel.sentinels.map((port) => `redis://127.0.0.1:${port}`).join(','), REDIS_SENTINEL_NAME: sentinel.name }
  }
  for (const [name, config] of Object.entries(configs)) {
    const app = await buildApp(t, { sim, config: { ...TIMEOUT, ...config } })
    const pair = await login(app, `${name}-user.1`)
    const renewed = await refresh(app, pair.refreshToken)
    t.equal(renewed.statusCode, 200, `${name}: refresh`)
    t.equal((await me(app, renewed.json().accessToken)).statusCode, 200, `${name}: authenticated`)
    t.equal((await app.inject('/health')).statusCode, 200, `${name}: ready`)
  }
  for (const port of cluster.masters) {
    t.ok((await cluster.admin(port).keys('*health:*')).length > 0, `the readiness probe wrote on master ${port}`)
  }
})

test('/health fails while the store cannot write for every slot: a read-only node, a master down before its promotion', async (t) => {
  const sim = await startSim(t)
  const sentinel = await startSentinelWithReplica(t)
  const { Redis } = await import('ioredis')
  const replicaClient = new Redis(sentinel.replica, '127.0.0.1', { enableOfflineQueue: false, lazyConnect: true })
  await replicaClient.connect()
  t.teardown(() => replicaClient.disconnect())
  // A host that passes a client connected to a replica: it starts (the host chose it), but is not ready.
  const onReplica = await buildApp(t, { sim, redis: replicaClient, config: TIMEOUT }).catch((err: Error) => err)
  t.match(onReplica, { message: /does not answer at boot/ }, 'a replica cannot even pass the boot probe')

  const redis = await startRedis(t, { own: true })
  const app = await buildApp(t, { sim, redisServer: redis, config: TIMEOUT })
  t.equal((await app.inject('/health')).statusCode, 200)
  await redis.stop()
  await until(async () => (await app.inject('/health')).statusCode === 503, '/health to fail', 5000)
  await redis.start()
  await until(async () => (await app.inject('/health')).statusCode === 200, '/health to recover', 10_000)
  t.pass('down, then ready again')

  const cluster = await startClusterWithReplicas(t)
  const clustered = await buildApp(t, { sim, config: { ...TIMEOUT, REDIS_CLUSTER_NODES: `redis://127.0.0.1:${cluster.masters[0]}` } })
  t.equal((await clustered.inject('/health')).statusCode, 200)
  await cluster.kill(cluster.masters[2] as number)
  await until(async () => (await clustered.inject('/health')).statusCode === 503, '/health to see a third of the slots without a master', 5000)
  t.pass('a third of the slots without a master: not ready within 5 s')
  await until(async () => (await clustered.inject('/health')).statusCode === 200, '/health once the replica is promoted', 20_000)
  t.pass('ready again once the replica took over')
})

test('the Redis settings are refused at boot when they contradict or miss each other', async (t) => {
  const { loadConfig, resolveConfig } = await import('../../../lib/config.js')
  const resolve = (values: Record<string, string>, hasRedisClient = false): unknown => resolveConfig(loadConfig(false, values), { hasRedisClient })
  const url = 'redis://127.0.0.1:6379'
  t.throws(() => resolve({ REDIS_URL: url, REDIS_CLUSTER_NODES: url }), { code: 'CONFIG_INVALID', message: /one way to reach Redis at most: REDIS_URL and REDIS_CLUSTER_NODES/ })
  t.doesNotThrow(() => resolve({ REDIS_URL: url }, true), 'a client passed in wins over REDIS_URL (the store plugin warns)')
  t.throws(() => resolve({ REDIS_CLUSTER_NODES: url }, true), { message: /a Redis client passed in and REDIS_CLUSTER_NODES/ })
  t.throws(() => resolve({ REDIS_SENTINELS: url }), { message: /REDIS_SENTINELS and REDIS_SENTINEL_NAME go together/ })
  t.throws(() => resolve({ REDIS_SENTINEL_NAME: 'master' }), { message: /go together/ })
  t.throws(() => resolve({ REDIS_URL: url, REDIS_NODE_PASSWORD: 'pw' }), { message: /REDIS_NODE_USERNAME and REDIS_NODE_PASSWORD are for the data nodes found through REDIS_SENTINELS/ })
  t.throws(() => resolve({ REDIS_CLUSTER_NODES: 'redis://a:1,http://b:2' }), { code: 'CONFIG_INVALID' }, 'every node a redis URL')
  const production = { NODE_ENV: 'production', WECHAT_APPID: 'wx0123456789abcdef', WECHAT_SECRET: 'secret-0123456789abcdef', JWT_SECRET: 'a-production-secret-0123456789-abcdefghijklmnop' }
  t.doesNotThrow(() => resolve({ ...production, REDIS_CLUSTER_NODES: url }), 'a cluster is a Redis for production')
  t.doesNotThrow(() => resolve({ ...production, REDIS_SENTINELS: url, REDIS_SENTINEL_NAME: 'master' }), 'and so is Sentinel')
  const bad = await connectConfigured({ ...TIMEOUT, REDIS_CLUSTER_NODES: 'redis://user:p%zz@127.0.0.1:1' }).catch((err: Error) => err)
  t.match(bad, { message: /^REDIS_CLUSTER_NODES: URL 1 is not valid/ }, 'a URL that does not parse')
  t.notMatch((bad as Error).message, /p%zz|user/, 'is named by its place, never by its text (it holds a password)')
  const refused = await connectConfigured({ ...TIMEOUT, REDIS_SENTINELS: 'redis://:s3cret-pass@127.0.0.1:1', REDIS_SENTINEL_NAME: 'master', REDIS_NODE_PASSWORD: 'n0de-pass' }).catch((err: Error) => err)
  t.match(refused, { message: /^REDIS_SENTINELS: no master 'master' reachable/ })
  t.notMatch((refused as Error).message, /s3cret-pass|n0de-pass/, 'no password in the boot error')
})

test('REDIS_SENTINELS: a master that refuses the login, or is down, says why at boot (not "Connection is closed.")', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wxauth-sentinel-auth-'))
  const { port: master, proc } = await spawnRedisOnFreePort(() => [])
  const admin = new Redis(master, '127.0.0.1')
  await admin.config('SET', 'requirepass', 'the-n0de-pass')
  admin.disconnect()
  const sentinel = await freePort()
  await writeFile(join(dir, 'sentinel.conf'), `sentinel monitor m 127.0.0.1 ${master} 1\n`)
  const sentinelProc = spawn('redis-server', [join(dir, 'sentinel.conf'), '--sentinel', '--port', String(sentinel), '--bind', '127.0.0.1'], { stdio: 'ignore' })
  t.teardown(async () => {
    // The master is killed in the test: a process killed by a signal keeps exitCode null.
    await Promise.all([proc.signalCode === null ? killRedis(proc) : null, killRedis(sentinelProc)])
    await rm(dir, { recursive: true, force: true })
  })
  const config = { ...TIMEOUT, REDIS_SENTINELS: `redis://127.0.0.1:${sentinel}`, REDIS_SENTINEL_NAME: 'm' }
  const failure = async (extra: Record<string, string>): Promise<string> => await connectConfigured({ ...config, ...extra }).then((client) => { if (client !== null) disconnectClient(client); return 'connected' }, (err: Error) => err.message)
  await until(async () => (await failure({ REDIS_NODE_PASSWORD: 'the-n0de-pass' })) === 'connected', 'the sentinel to answer', 10_000)
  const wrong = await failure({ REDIS_NODE_PASSWORD: 'not-the-pass' })
  t.match(wrong, /^REDIS_SENTINELS: cannot connect to master 'm' \((WRONGPASS|NOAUTH)[^)]*\): check REDIS_NODE_USERNAME and REDIS_NODE_PASSWORD$/)
  t.notMatch(wrong, /not-the-pass|the-n0de-pass/, 'no password in it')
  t.match(await failure({}), /^REDIS_SENTINELS: cannot connect to master 'm' \(NOAUTH[^)]*\): check REDIS_NODE_USERNAME/, 'none given')
  await killRedis(proc)
  t.match(await failure({ REDIS_NODE_PASSWORD: 'the-n0de-pass' }), /^REDIS_SENTINELS: (cannot connect to master 'm' \([^)]*ECONNREFUSED|no master 'm' reachable)/, 'the master down')
})
