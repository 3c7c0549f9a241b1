import type { RetryPolicy } from '@temporalio/common';
import { proxyActivities, setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { createPrepareCorpusActivities } from '../activities/prepare-corpus';
import { STAGES } from '../lib/constants';
import {
  describeProgress,
  type PipelineProgress,
  type StageProgress,
  withStage,
} from '../lib/pipeline/progress';
import type { PrepareCorpusInput, StageResult } from '../lib/pipeline/types';
import { mapLimit } from '../lib/util/concurrency';
import { progressQuery } from './shared';

type Activities = ReturnType<typeof createPrepareCorpusActivities>;

/** Bad input (file:line, a vanished file, a stale artifact) is non-retryable at the source; the rest retries. */
const RETRY: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '1m',
  maximumAttempts: 8,
};

/**
 * Planning and finalizing stream the whole corpus (hours at MS MARCO scale); shards are small. Every
 * activity heartbeats at least every few seconds, so a dead worker is noticed within a minute and a
 * cancellation reaches the activity within seconds.
 */
const cpu = proxyActivities<Activities>({
  startToCloseTimeout: '12h',
  scheduleToCloseTimeout: '2d',
  heartbeatTimeout: '1m',
  retry: RETRY,
});

/**
 * Tokenizer + corpus preparation: plan (source digest, tokenizer, cache lookup, shard plan stored in the
 * artifact store) → shards in parallel (bounded; each activity gets a reference to the plan and its own shard
 * spec, so history grows linearly with the shard count) → finalize (cross-shard checks, queries/qrels,
 * stats, manifest). A shard committed with the same key is reused, so re-running the workflow resumes.
 */
export async function prepareCorpus(
  input: PrepareCorpusInput,
): Promise<{ tokenizer: StageResult; corpus: StageResult }> {
  let progress: PipelineProgress = {
    runId: input.runId,
    state: 'running',
    stages: [
      { stage: STAGES.tokenizer, state: 'running' },
      { stage: STAGES.prepareCorpus, state: 'running', message: 'planning' },
    ],
  };
  setHandler(progressQuery, () => progress);
  const update = (stage: StageProgress) => {
    progress = withStage(progress, stage);
    setCurrentDetails(describeProgress(progress));
  };
  const completed = (stage: string, result: StageResult) =>
    update({
      stage,
      state: 'completed',
      artifact: result.uri,
      counts: result.stats,
      reused: result.reused,
      message: '',
    });

  const planned = await cpu.planCorpus(input);
  completed(STAGES.tokenizer, planned.tokenizer);
  if (planned.kind === 'reuse') {
    completed(STAGES.prepareCorpus, planned.result);
    progress = { ...progress, state: 'completed' };
    return { tokenizer: planned.tokenizer, corpus: planned.result };
  }

  const total = planned.shards.length;
  let done = 0;
  let reused = 0;
  update({ stage: STAGES.prepareCorpus, state: 'running', done, total, message: 'preparing shards' });
  await mapLimit(planned.shards, input.config.max_parallel_shards, async (shard) => {
    const outcome = await cpu.prepareCorpusShard({ plan: planned.plan, shard });
    done += 1;
    if (outcome.reused) reused += 1;
    update({ stage: STAGES.prepareCorpus, state: 'running', done, total });
  });
  update({ stage: STAGES.prepareCorpus, state: 'running', message: 'finalizing' });
  const corpus = await cpu.finalizeCorpus({ plan: planned.plan, reusedShards: reused });
  completed(STAGES.prepareCorpus, corpus);
  progress = { ...progress, state: 'completed' };
  return { tokenizer: planned.tokenizer, corpus };
}
