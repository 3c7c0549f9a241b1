import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { PipelineProgress, StageProgress } from '../lib/pipeline/progress';

/** `progress` query: the run's stages, their state, counts and artifact URIs. */
export const progressQuery = defineQuery<PipelineProgress>('progress');

/** A stage's child workflow reports its progress to the parent pipeline through this signal. */
export const stageProgressSignal = defineSignal<[StageProgress]>('stageProgress');

export const PipelineStageKey = defineSearchAttributeKey('PipelineStage', SearchAttributeType.KEYWORD);
export const PipelineRunKey = defineSearchAttributeKey('PipelineRun', SearchAttributeType.KEYWORD);
export const CorpusKey = defineSearchAttributeKey('Corpus', SearchAttributeType.KEYWORD);

/**
 * Runs `fn` over `items` with at most `limit` in flight, keeping result order. Deterministic inside a
 * workflow: completions are replayed from history in the same order.
 */
export async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return results;
}
