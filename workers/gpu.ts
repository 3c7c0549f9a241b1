/** The GPU worker: training activities, one slot per leased GPU so two trainings never share a device. */
import { type NativeConnection, Worker } from '@temporalio/worker';
import type { StageDeps } from '../activities/support';
import { createTrainerStageActivities } from '../activities/trainer-stage';
import { GPU_TASK_QUEUE } from '../lib/constants';
import { GpuLeasePool } from '../lib/trainer/gpu-leases';
import { HEARTBEAT_THROTTLE } from './settings';

export interface GpuWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: StageDeps;
  /** Default `cotmae-gpu`; an embedded process serves a private queue. */
  taskQueue?: string;
  /** Time trainers get to checkpoint and upload after shutdown starts (default 30 s, Kubernetes' default). */
  shutdownGraceMs?: number;
}

export function gpuActivities(deps: StageDeps) {
  const { runTrainerStage } = createTrainerStageActivities(deps);
  return { runTrainerStage };
}

/** One activity slot per device of `deps.gpus` (a single CPU "device" when none is given). */
export async function createGpuWorker(opts: GpuWorkerOptions): Promise<Worker> {
  const gpus = opts.deps.gpus ?? new GpuLeasePool(['0']);
  const grace = opts.shutdownGraceMs ?? 30_000;
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? GPU_TASK_QUEUE,
    activities: gpuActivities({ ...opts.deps, gpus }),
    maxConcurrentActivityTaskExecutions: gpus.size,
    ...HEARTBEAT_THROTTLE,
    shutdownGraceTime: grace,
    shutdownForceTime: grace + 15_000,
  });
}
