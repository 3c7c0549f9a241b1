import type { RetryPolicy } from '@temporalio/common';
import {
  getExternalWorkflowHandle,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { createPrepareCorpusActivities } from '../activities/prepare-corpus';
import { CPU_TASK_QUEUE, STAGES } from '../lib/constants';
import {
  describeProgress,
  type PipelineProgress,
  type StageProgress,
  withStage,
} from '../lib/pipeline/progress';
import type { PrepareCorpusInput, PrepareCorpusResult } from '../lib/pipeline/types';
import { mapBounded, progressQuery, stageProgressSignal } from './shared';

type Activities = ReturnType<typeof createPrepareCorpusActivities>;

const RETRY: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '1m',
  maximumAttempts: 8,
};

/** Planning and finalizing read the corpus once; they heartbeat while they stream. */
const cpu = proxyActivities<Activities>({
  taskQueue: CPU_TASK_QUEUE,
  startToCloseTimeout: '6h',
  heartbeatTimeout: '2m',
  retry: RETRY,
});

/**
 * Corpus preparation: plan (layout, tokenizer, shards) → shards in parallel (bounded) →
 * finalize (cross-shard checks, queries/qrels, stats, manifest). A retried shard whose output
 * is already committed is skipped by the activity, so re-running the workflow resumes.
 */
export async function prepareCorpus(input: PrepareCorpusInput): Promise<PrepareCorpusResult> {
  let progress: PipelineProgress = {
    runId: input.runId,
    state: 'running',
    stages: [{ stage: STAGES.prepareCorpus, state: 'running', message: 'planning' }],
  };
  setHandler(progressQuery, () => progress);
  const report = async (update: Omit<StageProgress, 'stage'>) => {
    const stage = { stage: STAGES.prepareCorpus, ...update };
    progress = withStage(progress, stage);
    setCurrentDetails(describeProgress(progress));
    const parent = workflowInfo().parent;
    if (parent)
      await getExternalWorkflowHandle(parent.workflowId, parent.runId).signal(stageProgressSignal, stage);
  };

  const plan = await cpu.planCorpus(input);
  let done = 0;
  await report({ state: 'running', done, total: plan.shards.length, message: 'preparing shards' });
  const shards = await mapBounded(plan.shards, input.config.max_parallel_shards, async (shard) => {
    const summary = await cpu.prepareCorpusShard({ plan, shard });
    done += 1;
    await report({ state: 'running', done, total: plan.shards.length });
    return summary;
  });
  await report({ state: 'running', message: 'finalizing' });
  const result = await cpu.finalizeCorpus({ plan, shards });
  progress = { ...progress, state: 'completed' };
  await report({ state: 'completed', counts: result.stats, artifact: result.uri, message: '' });
  return result;
}
