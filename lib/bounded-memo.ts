// The memos of hot paths (verified tokens, access checks' commands, parsed roles, forward-auth
// checks, rate-limit keys): a Map bounded first in, first out. A plain Map and this one function, so
// that a hit costs one lookup and nothing else (no move to the back, no bookkeeping).

/**
 * Sets `key` to `value` in `memo` and returns `value`. A new key past `max` entries takes the place of
 * the oldest; a key already there is replaced where it stands (nothing goes).
 */
export function remember<K, V> (memo: Map<K, V>, key: K, value: V, max: number): V {
  if (memo.size >= max && !memo.has(key)) memo.delete(memo.keys().next().value as K)
  memo.set(key, value)
  return value
}
