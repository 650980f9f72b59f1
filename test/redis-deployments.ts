// Real Redis deployments with replicas, for the failover tests: a Redis Cluster of three masters and
// three replicas, and a master with a replica watched by three Sentinels. Failure detection is set
// short (a node or master is taken for dead after 1 s) so that a test sees a promotion in seconds.
// Every process is stopped at teardown.
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { freePort, killRedis, spawnRedisOnFreePort } from './helper.js'

type Tap = { teardown: (fn: () => unknown) => void }

export const NODE_TIMEOUT_MS = 1000

export interface Deployment {
  /** Kills a process at once (SIGKILL), as a crashed host would; null when there is none on that port. */
  kill: (port: number) => Promise<void>
  /** A client to one node, for assertions and administration (one per port, closed at teardown). */
  admin: (port: number) => Redis
}

async function deployment (t: Tap, name: string): Promise<{ dir: string, procs: Map<number, ChildProcess>, base: Deployment }> {
  const dir = await mkdtemp(join(tmpdir(), `wxauth-${name}-`))
  const procs = new Map<number, ChildProcess>()
  const admins = new Map<number, Redis>()
  t.teardown(async () => {
    for (const a of admins.values()) a.disconnect()
    await Promise.all([...procs.values()].map(killRedis))
    await rm(dir, { recursive: true, force: true })
  })
  const base: Deployment = {
    kill: async (port) => {
      const p = procs.get(port) ?? null
      procs.delete(port)
      await killRedis(p)
    },
    admin: (port) => {
      let client = admins.get(port)
      if (client === undefined) {
        client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 })
        client.on('error', () => {})
        admins.set(port, client)
      }
      return client
    }
  }
  return { dir, procs, base }
}

/** A Redis Cluster: three masters, each with one replica; resolves once every node says ok. */
export async function startClusterWithReplicas (t: Tap): Promise<Deployment & { masters: number[], replicas: number[] }> {
  const { dir, procs, base } = await deployment(t, 'cluster')
  const ports: number[] = []
  for (let i = 0; i < 6; i++) {
    const { port, proc } = await spawnRedisOnFreePort((port) => ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir,
      '--cluster-node-timeout', String(NODE_TIMEOUT_MS), '--cluster-replica-validity-factor', '0'], { cluster: true })
    ports.push(port)
    procs.set(port, proc)
  }
  const [masters, replicas] = [ports.slice(0, 3), ports.slice(3)]
  const admins = ports.map((port) => base.admin(port))
  const third = Math.floor(16384 / 3)
  await Promise.all(masters.map(async (_port, i) =>
    await admins[i]?.call('CLUSTER', 'ADDSLOTSRANGE', String(i * third), String(i === 2 ? 16383 : (i + 1) * third - 1))))
  for (const port of ports.slice(1)) await admins[0]?.call('CLUSTER', 'MEET', '127.0.0.1', String(port))
  await until(async () => (await Promise.all(admins.map(async (a) => String(await a.call('CLUSTER', 'INFO'))))).every((i) => i.includes('cluster_known_nodes:6')), 'the nodes to meet')
  const ids = await Promise.all(masters.map(async (_port, i) => String(await admins[i]?.call('CLUSTER', 'MYID'))))
  await Promise.all(replicas.map(async (_port, i) => await admins[3 + i]?.call('CLUSTER', 'REPLICATE', ids[i] as string)))
  await until(async () => {
    const infos = await Promise.all(admins.map(async (a) => String(await a.call('CLUSTER', 'INFO'))))
    const roles = await Promise.all(admins.slice(3).map(async (a) => String((await a.call('ROLE') as unknown[])[3] ?? '')))
    return infos.every((i) => i.includes('cluster_state:ok')) && roles.every((r) => r === 'connected')
  }, 'the cluster to form with its replicas in sync')
  return { ...base, masters, replicas }
}

/**
 * A TCP proxy that holds every chunk `lagMs` in each direction, in order: a replica behind it is that
 * far behind its master, as over a slow link. Closed at teardown.
 */
async function laggingProxy (t: Tap, target: number, lagMs: number): Promise<number> {
  const port = await freePort()
  const sockets = new Set<Socket>()
  const server = createServer((down) => {
    const up = connect(target, '127.0.0.1')
    for (const s of [down, up]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => { sockets.delete(s); down.destroy(); up.destroy() })
    }
    down.on('data', (chunk) => { setTimeout(() => { up.write(chunk) }, lagMs) })
    up.on('data', (chunk) => { setTimeout(() => { down.write(chunk) }, lagMs) })
  })
  await new Promise<void>((resolve) => { server.listen(port, '127.0.0.1', resolve) })
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => { server.close(resolve) })
  })
  return port
}

/**
 * A master and its replica, watched by three Sentinels (quorum 2) under the name `master`. With
 * `replicaLagMs`, the replica reaches its master through a proxy that delays each direction by that.
 */
export async function startSentinelWithReplica (t: Tap, opts: { replicaLagMs?: number } = {}): Promise<Deployment & { name: string, master: number, replica: number, sentinels: number[] }> {
  const { dir, procs, base } = await deployment(t, 'sentinel')
  // Full syncs write their snapshot in --dir: the test's directory, not the working one.
  const { port: master, proc: masterProc } = await spawnRedisOnFreePort(() => ['--dir', dir])
  procs.set(master, masterProc)
  const upstream = opts.replicaLagMs === undefined ? master : await laggingProxy(t, master, opts.replicaLagMs)
  const { port: replica, proc: replicaProc } = await spawnRedisOnFreePort(() => ['--dir', dir, '--replicaof', '127.0.0.1', String(upstream)])
  procs.set(replica, replicaProc)
  await until(async () => String((await base.admin(replica).call('ROLE') as unknown[])[3] ?? '') === 'connected', 'the replica to sync', 60_000)
  const sentinels = await Promise.all(Array.from({ length: 3 }, async () => await freePort()))
  for (const port of sentinels) {
    const conf = join(dir, `sentinel-${port}.conf`)
    await writeFile(conf, [
      `sentinel monitor master 127.0.0.1 ${master} 2`,
      `sentinel down-after-milliseconds master ${NODE_TIMEOUT_MS}`,
      'sentinel failover-timeout master 5000',
      'sentinel parallel-syncs master 1'
    ].join('\n') + '\n')
    const p = spawn('redis-server', [conf, '--sentinel', '--port', String(port), '--bind', '127.0.0.1'], { stdio: 'ignore' })
    procs.set(port, p)
  }
  await until(async () => {
    const known = await base.admin(sentinels[0] as number).call('SENTINEL', 'SENTINELS', 'master').catch(() => []) as unknown[]
    const replicas = await base.admin(sentinels[0] as number).call('SENTINEL', 'REPLICAS', 'master').catch(() => []) as unknown[]
    return known.length === 2 && replicas.length === 1
  }, 'the sentinels to find each other and the replica')
  return { ...base, name: 'master', master, replica, sentinels }
}

/** The port of the master the sentinels name now. */
export async function sentinelMaster (d: Deployment & { sentinels: number[] }): Promise<number> {
  const [, port] = await d.admin(d.sentinels[0] as number).call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'master') as [string, string]
  return Number(port)
}

/** Polls `check` until it holds; fails at the deadline, or at once when `gaveUp` says it never will. */
export async function until (check: () => Promise<boolean>, what: string, timeoutMs = 30_000, everyMs = 100, gaveUp = (): boolean => false): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check().catch(() => false)) return
    if (gaveUp()) throw new Error(`gave up waiting for ${what}`)
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(everyMs)
  }
}
