// The access check's read copy's memory (redis-access-cache.ts): the replies kept per user key, and
// the bound on them.

/** An HMGET's reply: the values of the fields it names, null for each one missing. */
export type Reply = Array<string | null>

/**
 * The kept reads, per user key, at most `maxEntries` in all. Users go in the order they were kept,
 * with a second chance (the clock algorithm): a user read since it was last passed over is kept and
 * goes to the back, so the users that go are about the least recently used. A hit only marks its user;
 * moving it to the back on every hit (a Map delete and set) was half of the cache's cost per request.
 */
export function boundedReads (maxEntries: number) {
  const users = new Map<string, { reads: Map<string, Reply>, used: boolean }>()
  let size = 0
  return {
    get (key: string, id: string): Reply | undefined {
      const user = users.get(key)
      if (user === undefined) return undefined
      const hit = user.reads.get(id)
      if (hit !== undefined) user.used = true
      return hit
    },
    keep (key: string, id: string, reply: Reply): void {
      const user = users.get(key) ?? { reads: new Map<string, Reply>(), used: false }
      users.delete(key)
      users.set(key, user)
      if (!user.reads.has(id)) size++
      user.reads.set(id, reply)
      for (const [oldest, old] of users) {
        if (size <= maxEntries) break
        if (oldest === key && users.size > 1) {
          // Behind the users just given a second chance, which go before it.
          users.delete(key)
          users.set(key, user)
        } else if (oldest === key) {
          // One user holds more than the bound: its oldest reads go.
          for (const first of old.reads.keys()) { if (size <= maxEntries) break; old.reads.delete(first); size-- }
        } else if (old.used) {
          old.used = false
          users.delete(oldest)
          users.set(oldest, old)
        } else {
          size -= old.reads.size
          users.delete(oldest)
        }
      }
    },
    drop (key: string): void {
      const user = users.get(key)
      if (user !== undefined) { size -= user.reads.size; users.delete(key) }
    },
    clear (): void { users.clear(); size = 0 },
    get size (): number { return size }
  }
}
