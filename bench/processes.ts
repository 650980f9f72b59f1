// The processes a benchmark run starts and stops: redis-server, the WeChat simulator, the gateway.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

export interface Proc {
  name: string
  child: ChildProcess
  output: () => string
  stop: () => Promise<void>
}

export function start (name: string, command: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (d: Buffer): void => { out = (out + d.toString()).slice(-20_000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return {
    name,
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))])
    }
  }
}

/** Polls `url` until it answers `status`, or fails with the process's output. */
export async function waitFor (url: string, proc: Proc, status = 200, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited:\n${proc.output()}`)
    try {
      const res = await request(url)
      await res.body.dump()
      if (res.statusCode === status) return
    } catch {}
    await sleep(50)
  }
  throw new Error(`${proc.name} did not answer ${url} in time:\n${proc.output()}`)
}

export async function startRedis (port: number): Promise<Proc> {
  const proc = start('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'])
  await new Promise<void>((resolve, reject) => {
    proc.child.once('error', (err) => reject(new Error(`cannot run redis-server (apt-get install -y redis-server): ${err.message}`)))
    const t = setInterval(() => { if (proc.output().includes('Ready to accept connections')) { clearInterval(t); resolve() } }, 20)
  })
  return proc
}
