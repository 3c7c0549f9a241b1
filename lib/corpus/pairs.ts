/** Choosing each passage's context passage within its document (CoT-MAE's contextual span). */
import type { CorpusPrepConfig } from './types';

type PairConfig = Pick<CorpusPrepConfig, 'pair_strategy' | 'pair_window' | 'single_passage_docs' | 'seed'>;

/**
 * Position of the context passage of passage `k` in a document of `n` passages, or -1 for none.
 * 'adjacent': the next passage (the previous one for the last). 'random': uniform over the positions within
 * ±pair_window other than k, drawn from a hash of (seed, passage id) so any shard split gives the same pairs.
 */
export function contextPosition(k: number, n: number, passageId: string, cfg: PairConfig): number {
  if (n === 1) return cfg.single_passage_docs === 'self' ? 0 : -1;
  if (cfg.pair_strategy === 'adjacent') return k + 1 < n ? k + 1 : k - 1;
  const lo = Math.max(0, k - cfg.pair_window);
  const hi = Math.min(n - 1, k + cfg.pair_window);
  const pick = lo + (hash32(`${cfg.seed}\u0000${passageId}`) % (hi - lo)); // hi - lo candidates besides k
  return pick >= k ? pick + 1 : pick;
}

/** FNV-1a over UTF-16 units with a murmur3 finalizer: stable across platforms and Node versions. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i += 1) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
