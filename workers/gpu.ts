/** The GPU worker: training activities, one slot per GPU so two trainings never share a device. */
import { type NativeConnection, Worker } from '@temporalio/worker';
import { createGpuActivities } from '../activities/gpu';
import { createPretrainActivities } from '../activities/pretrain';
import type { StageDeps } from '../activities/support';
import { GPU_TASK_QUEUE } from '../lib/constants';

export interface GpuWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: StageDeps;
  /** GPUs on this machine; default 1 (also the right value on a CPU-only box, where training runs on CPU). */
  gpus?: number;
}

export function gpuActivities(deps: StageDeps) {
  return { ...createGpuActivities(deps), ...createPretrainActivities(deps) };
}

export async function createGpuWorker(opts: GpuWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: GPU_TASK_QUEUE,
    activities: gpuActivities(opts.deps),
    maxConcurrentActivityTaskExecutions: Math.max(1, opts.gpus ?? 1),
    // Training activities checkpoint on cancellation; give them time before the worker goes.
    shutdownGraceTime: '2m',
  });
}
