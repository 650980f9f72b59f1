// The read copy of the access check (ACCESS_CHECK=tracked, lib/store/redis-access-cache.ts) as
// Prometheus metrics: how each authenticated request's check was answered, and how many reads the
// copy holds. Read from the cache's own counters at each scrape: nothing is counted on the request
// path. Absent a read copy (ACCESS_CHECK=strict, the memory store, a client that cannot be tracked),
// they stay at zero.
import { Counter, Gauge, type Registry } from 'prom-client'
import type { CacheOutcome } from './store/redis-access-cache.js'

/** What the metrics read: the cache's counters and its size (an AccessCache has both). */
export interface AccessCacheSource {
  readonly counts: Readonly<Record<CacheOutcome, number>>
  readonly size: number
}

const OUTCOMES: readonly CacheOutcome[] = ['hit', 'miss', 'uncached']

export function defineAccessCacheMetrics (registers: Registry[]) {
  let source: AccessCacheSource | undefined
  const counted: Record<CacheOutcome, number> = { hit: 0, miss: 0, uncached: 0 }
  const reads = new Counter({
    name: 'wechat_auth_access_cache_reads_total',
    help: 'Access checks by how the read copy answered: hit (from memory, no round trip), miss (read from Redis and kept), uncached (its connection down: read on the store\'s)',
    labelNames: ['outcome'] as const,
    registers,
    collect () {
      if (source === undefined) return
      for (const outcome of OUTCOMES) {
        const now = source.counts[outcome]
        if (now > counted[outcome]) this.inc({ outcome }, now - counted[outcome])
        counted[outcome] = now
      }
    }
  })
  const entries = new Gauge({
    name: 'wechat_auth_access_cache_entries',
    help: 'Reads the access check\'s read copy holds (at most ACCESS_CACHE_MAX_ENTRIES)',
    registers,
    collect () { this.set(source?.size ?? 0) }
  })
  return {
    reads,
    entries,
    /** Counts `cache` from now on (plugins/store.ts, once the store has one). */
    watch (cache: AccessCacheSource): void { source = cache }
  }
}
