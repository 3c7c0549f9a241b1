import {
  getExternalWorkflowHandle,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { createPretrainActivities } from '../activities/pretrain';
import { GPU_TASK_QUEUE, STAGES } from '../lib/constants';
import {
  describeProgress,
  type PipelineProgress,
  type StageProgress,
  withStage,
} from '../lib/pipeline/progress';
import type { PretrainResult, PretrainWorkflowInput } from '../lib/pipeline/types';
import { progressQuery, stageProgressSignal } from './shared';

type Activities = ReturnType<typeof createPretrainActivities>;

/**
 * CoT-MAE v2 pre-training: one long activity on the GPU queue. Its heartbeats carry the step and the last
 * uploaded checkpoint; a worker that dies is noticed within the heartbeat timeout and the retry resumes
 * from that checkpoint (on any GPU worker). Bad input (exit 2 of the trainer) is not retried.
 */
export async function pretrain(input: PretrainWorkflowInput): Promise<PretrainResult> {
  let progress: PipelineProgress = {
    runId: input.activity.runId,
    state: 'running',
    stages: [{ stage: STAGES.pretrain, state: 'running' }],
  };
  const forward = async (stage: StageProgress) => {
    progress = withStage(progress, stage);
    setCurrentDetails(describeProgress(progress));
    const parent = workflowInfo().parent;
    if (parent)
      await getExternalWorkflowHandle(parent.workflowId, parent.runId).signal(stageProgressSignal, stage);
  };
  setHandler(progressQuery, () => progress);
  // The activity reports its step, loss and checkpoints here (throttled); they go up to the pipeline.
  setHandler(stageProgressSignal, (stage) => forward(stage));

  const gpu = proxyActivities<Activities>({
    taskQueue: GPU_TASK_QUEUE,
    startToCloseTimeout: '7d',
    heartbeatTimeout: `${input.training.heartbeat_timeout_s}s`,
    retry: {
      initialInterval: '5s',
      backoffCoefficient: 2,
      maximumInterval: '5m',
      maximumAttempts: input.training.max_attempts,
    },
  });
  const result = await gpu.pretrain(input.activity);
  progress = { ...progress, state: 'completed' };
  await forward({
    stage: STAGES.pretrain,
    state: 'completed',
    counts: result.stats,
    artifact: result.uri,
    message: '',
  });
  return result;
}
