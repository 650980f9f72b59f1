// The CPU time the bench reads from Linux's /proc: a process's, a process tree's (a primary and its
// workers), the whole machine's. Zeros elsewhere.
import { existsSync, readFileSync, readdirSync } from 'node:fs'

/** Seconds in two adjacent /proc/<pid>/stat fields (clock ticks of 1/100 s), counted after the name. */
export function ticksOf (stat: string, first: number): number {
  const fields = stat.split(') ')[1]?.split(' ') ?? []
  return (Number(fields[first]) + Number(fields[first + 1])) / 100
}

/** CPU seconds a process has used so far (Linux /proc; 0 elsewhere). */
export function cpuSeconds (pid: number | undefined): number {
  try {
    return ticksOf(readFileSync(`/proc/${pid ?? 0}/stat`, 'utf8'), 11) // utime + stime
  } catch {
    return 0
  }
}

/**
 * CPU seconds a process and its descendants have used so far: its own time, its children's that it
 * has waited for (a worker that died), and every live descendant's (a primary's own stat does not
 * count its live workers). Linux /proc; 0 elsewhere.
 */
export function treeCpuSeconds (pid: number | undefined): number {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid ?? 0}/stat`, 'utf8')
  } catch {
    return 0
  }
  const own = ticksOf(stat, 11) + ticksOf(stat, 13) // utime + stime, cutime + cstime
  return childrenOf(pid ?? 0).reduce((sum, child) => sum + treeCpuSeconds(child), own)
}

/**
 * CPU seconds every process of the machine has used since boot (/proc/stat: user, nice, system; the
 * interrupt and softirq time, much of it loopback traffic of the run, not included), and the time the
 * hypervisor gave to other machines (steal). Zeros elsewhere than on Linux.
 */
export function machineCpuSeconds (): { busy: number, steal: number } {
  try {
    const [user, nice, system, , , , , steal] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number)
    return { busy: ((user ?? 0) + (nice ?? 0) + (system ?? 0)) / 100, steal: (steal ?? 0) / 100 }
  } catch {
    return { busy: 0, steal: 0 }
  }
}

// /proc/<pid>/task/<tid>/children needs a kernel built with CONFIG_PROC_CHILDREN; without it every
// process's parent is read instead.
const childrenFiles = existsSync(`/proc/${process.pid}/task/${process.pid}/children`)

function childrenOf (pid: number): number[] {
  const read = (file: string): string => { try { return readFileSync(file, 'utf8') } catch { return '' } }
  if (!childrenFiles) {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d))
      .filter((d) => read(`/proc/${d}/stat`).split(') ')[1]?.split(' ')[1] === String(pid)).map(Number)
  }
  let tasks: string[] = []
  try { tasks = readdirSync(`/proc/${pid}/task`) } catch {}
  return tasks.flatMap((tid) => read(`/proc/${pid}/task/${tid}/children`).split(' ').filter((c) => c.trim() !== '').map(Number))
}
