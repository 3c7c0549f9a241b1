/**
 * What `cotmae status` and `cotmae run` show: the pipeline's `progress` query (stage states, artifacts), each
 * running stage's child workflow query (shards done), and the heartbeat details of its pending activities
 * (training step, loss, last checkpoint, device) read with describe — progress that never enters a history.
 */
import type { Client, WorkflowExecutionStatusName } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { PipelineProgress, StageProgress } from '../pipeline/progress';
import type { TrainerHeartbeat } from '../pipeline/types';

export interface LiveProgress {
  workflowId: string;
  status: WorkflowExecutionStatusName;
  progress?: PipelineProgress;
}

/** Child workflow ids of the stages (the pipeline starts them as `<workflowId>/<stage>`). */
const STAGE_CHILDREN = ['prepare-corpus', 'pretrain'];

export async function liveProgress(client: Client, workflowId: string): Promise<LiveProgress> {
  const handle = client.workflow.getHandle(workflowId);
  const description = await handle.describe();
  let progress: PipelineProgress | undefined;
  try {
    progress = await handle.query<PipelineProgress>('progress');
  } catch {
    // A closed run whose workers are gone cannot answer queries; the status still helps.
  }
  if (progress && description.status.name === 'RUNNING') {
    for (const child of STAGE_CHILDREN) {
      if (!progress.stages.some((s) => s.stage === child && s.state === 'running')) continue;
      const stages = await childStages(client, `${workflowId}/${child}`).catch(() => []);
      for (const stage of stages) progress = merge(progress, stage);
    }
  }
  return { workflowId, status: description.status.name, ...(progress ? { progress } : {}) };
}

function merge(progress: PipelineProgress, update: StageProgress): PipelineProgress {
  const known = progress.stages.find((s) => s.stage === update.stage);
  if (known && known.state !== 'running' && known.state !== 'pending') return progress;
  const stages = known
    ? progress.stages.map((s) => (s.stage === update.stage ? { ...s, ...update } : s))
    : [...progress.stages, update];
  return { ...progress, stages };
}

/** A running child's own stages, with training progress from its pending activity's heartbeat. */
async function childStages(client: Client, childId: string): Promise<StageProgress[]> {
  const handle = client.workflow.getHandle(childId);
  const description = await handle.describe();
  if (description.status.name !== 'RUNNING') return [];
  const own = await handle.query<PipelineProgress>('progress').catch(() => undefined);
  const stages = own?.stages.filter((s) => s.state === 'running') ?? [];
  for (const pending of description.raw.pendingActivities ?? []) {
    const payload = pending.heartbeatDetails?.payloads?.[0];
    if (!payload || pending.activityType?.name !== 'runTrainerStage') continue;
    const beat = defaultPayloadConverter.fromPayload<TrainerHeartbeat>(payload as never);
    const stage = childId.slice(childId.lastIndexOf('/') + 1);
    const where = [
      beat.phase,
      beat.device ? `on ${beat.device}` : '',
      beat.worker ? `(${beat.worker})` : '',
      pending.attempt && pending.attempt > 1 ? `attempt ${pending.attempt}` : '',
      beat.lastCheckpoint ? `last checkpoint ${beat.lastCheckpoint}` : '',
    ].filter((x) => x !== '');
    stages.push({
      stage,
      state: 'running',
      done: beat.step,
      ...(beat.total ? { total: beat.total } : {}),
      ...(beat.loss !== undefined ? { counts: { loss: beat.loss, ...(beat.losses ?? {}) } } : {}),
      message: where.join(' '),
    });
  }
  return stages;
}
