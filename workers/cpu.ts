/** The CPU worker: every workflow, and the activities that need no GPU. */
import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createPipelineActivities } from '../activities/pipeline';
import { createPrepareCorpusActivities } from '../activities/prepare-corpus';
import type { StageDeps } from '../activities/support';
import { createTrainerStageActivities } from '../activities/trainer-stage';
import { CPU_TASK_QUEUE } from '../lib/constants';
import { HEARTBEAT_THROTTLE } from './settings';

export interface CpuWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: StageDeps;
  /** Default `cotmae-cpu`; an embedded process serves a private queue. */
  taskQueue?: string;
  /** Activity slots; corpus shards are CPU-bound, so about one per core. */
  maxActivities?: number;
  /** A prebuilt workflow bundle (tests and the in-process CLI share one); otherwise bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Time running activities get to finish after shutdown starts (default 30 s). */
  shutdownGraceMs?: number;
}

export function cpuActivities(deps: StageDeps) {
  const { resolveTrainerStage } = createTrainerStageActivities(deps);
  return { ...createPipelineActivities(deps), ...createPrepareCorpusActivities(deps), resolveTrainerStage };
}

export async function createCpuWorker(opts: CpuWorkerOptions): Promise<Worker> {
  const grace = opts.shutdownGraceMs ?? 30_000;
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? CPU_TASK_QUEUE,
    ...(opts.workflowBundle
      ? { workflowBundle: opts.workflowBundle }
      : { workflowsPath: require.resolve('../workflows') }),
    activities: cpuActivities(opts.deps),
    maxConcurrentActivityTaskExecutions: opts.maxActivities ?? 2,
    ...HEARTBEAT_THROTTLE,
    shutdownGraceTime: grace,
    shutdownForceTime: grace + 15_000,
  });
}
