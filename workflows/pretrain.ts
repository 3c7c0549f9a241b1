import { proxyActivities, setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { createTrainerStageActivities } from '../activities/trainer-stage';
import { STAGES } from '../lib/constants';
import { describeProgress, type PipelineProgress } from '../lib/pipeline/progress';
import { pretrainStageSpec } from '../lib/pipeline/stages';
import type { PretrainWorkflowInput, StageResult } from '../lib/pipeline/types';
import { runTrainerStage } from './gpu-stage';
import { progressQuery } from './shared';

type Activities = ReturnType<typeof createTrainerStageActivities>;

const control = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  scheduleToCloseTimeout: '30m',
  retry: { maximumAttempts: 5 },
});

/**
 * CoT-MAE v2 pre-training through the GPU-stage runner: reuse this run's committed model or another run's
 * with the same cache key, else one long activity on the GPU queue (checkpoints uploaded as they appear,
 * retries resume from the newest one; step and loss in its heartbeat details).
 */
export async function pretrain(input: PretrainWorkflowInput): Promise<StageResult> {
  let progress: PipelineProgress = {
    runId: input.runId,
    state: 'running',
    stages: [{ stage: STAGES.pretrain, state: 'running' }],
  };
  setHandler(progressQuery, () => progress);
  const spec = pretrainStageSpec(input);
  const resolution = await control.resolveTrainerStage({ spec });
  const result =
    resolution.kind === 'reuse'
      ? resolution.result
      : await runTrainerStage({ ...spec, cacheKey: resolution.cacheKey }, input.supervision);
  progress = {
    ...progress,
    state: 'completed',
    stages: [
      {
        stage: STAGES.pretrain,
        state: 'completed',
        artifact: result.uri,
        counts: result.stats,
        ...(result.reused ? { reused: result.reused } : {}),
      },
    ],
  };
  setCurrentDetails(describeProgress(progress));
  return result;
}
