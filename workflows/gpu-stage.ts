/** The workflow side of the GPU-stage runner: how a training activity is scheduled and supervised. */
import { ActivityCancellationType, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { createTrainerStageActivities } from '../activities/trainer-stage';
import { gpuQueueFor } from '../lib/constants';
import type { StageResult, StageSupervision, TrainerStageSpec } from '../lib/pipeline/types';

type Activities = ReturnType<typeof createTrainerStageActivities>;

/** Failure types that retrying cannot fix (the runner sets them; listed here too so no retry policy forgets). */
export const NON_RETRYABLE_TRAINER_FAILURES = [
  'TrainerBadInput',
  'TrainerOutOfMemory',
  'BadInput',
  'ConfigError',
  'StaleArtifact',
];

/**
 * Runs one trainer command on this workflow's GPU queue. A worker that dies is noticed within the heartbeat
 * timeout and the next attempt resumes from the newest uploaded checkpoint; a cancellation waits for the
 * trainer to checkpoint and the checkpoint to be uploaded (WAIT_CANCELLATION_COMPLETED), so the workflow ends
 * Canceled with nothing lost.
 */
export function runTrainerStage(spec: TrainerStageSpec, supervision: StageSupervision): Promise<StageResult> {
  const bound = supervision.stage_timeout_h * 3_600_000;
  const gpu = proxyActivities<Activities>({
    taskQueue: gpuQueueFor(workflowInfo().taskQueue),
    startToCloseTimeout: bound,
    scheduleToCloseTimeout: bound,
    heartbeatTimeout: supervision.heartbeat_timeout_s * 1000,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '5s',
      backoffCoefficient: 2,
      maximumInterval: '2m',
      maximumAttempts: supervision.max_attempts,
      nonRetryableErrorTypes: NON_RETRYABLE_TRAINER_FAILURES,
    },
  });
  return gpu.runTrainerStage({ ...spec, stallTimeoutS: supervision.stall_timeout_s });
}
