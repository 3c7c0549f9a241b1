/** The CPU worker: every workflow, and the activities that need no GPU. */
import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createPipelineActivities } from '../activities/pipeline';
import { createPrepareCorpusActivities } from '../activities/prepare-corpus';
import type { StageDeps } from '../activities/support';
import { CPU_TASK_QUEUE } from '../lib/constants';

export interface CpuWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: StageDeps;
  /** Activity slots; corpus shards are CPU-bound, so about one per core. */
  maxActivities?: number;
  /** A prebuilt workflow bundle (tests and the in-process CLI share one); otherwise bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

export function cpuActivities(deps: StageDeps) {
  return { ...createPipelineActivities(), ...createPrepareCorpusActivities(deps) };
}

export async function createCpuWorker(opts: CpuWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: CPU_TASK_QUEUE,
    ...(opts.workflowBundle
      ? { workflowBundle: opts.workflowBundle }
      : { workflowsPath: require.resolve('../workflows') }),
    activities: cpuActivities(opts.deps),
    maxConcurrentActivityTaskExecutions: opts.maxActivities ?? 2,
    shutdownGraceTime: '30s',
  });
}
