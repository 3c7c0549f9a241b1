/** Shard counters and their merge across shards. */
import type { CorpusStats } from './types';

export const HISTOGRAM_BUCKET_WIDTH = 8;

export function emptyStats(): CorpusStats {
  return {
    docs: 0,
    passages: 0,
    tokens: 0,
    single_passage_docs: 0,
    pairs: 0,
    truncations: 0,
    empty_docs: 0,
    blank_lines: 0,
    length_histogram: { bucket_width: HISTOGRAM_BUCKET_WIDTH, counts: [] },
  };
}

export function countPassageLength(stats: CorpusStats, nTokens: number): void {
  const counts = stats.length_histogram.counts;
  const bucket = Math.floor(nTokens / stats.length_histogram.bucket_width);
  while (counts.length <= bucket) counts.push(0);
  counts[bucket] = (counts[bucket] as number) + 1;
}

/** Sum of shard stats (histograms added bucket by bucket). */
export function mergeStats(all: readonly CorpusStats[]): CorpusStats {
  const total = emptyStats();
  for (const s of all) {
    total.docs += s.docs;
    total.passages += s.passages;
    total.tokens += s.tokens;
    total.single_passage_docs += s.single_passage_docs;
    total.pairs += s.pairs;
    total.truncations += s.truncations;
    total.empty_docs += s.empty_docs;
    total.blank_lines += s.blank_lines;
    s.length_histogram.counts.forEach((n, i) => {
      const counts = total.length_histogram.counts;
      while (counts.length <= i) counts.push(0);
      counts[i] = (counts[i] as number) + n;
    });
  }
  return total;
}
