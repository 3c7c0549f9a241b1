/**
 * One real Temporal dev server (free ports) plus the project's CPU and GPU workers in this process,
 * shared by the integration tests of a file: start it in `before`, stop it in `after`.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  type Worker,
  type WorkflowBundle,
} from '@temporalio/worker';
import type { StageDeps, TrainerCommand } from '../../activities/support';
import { type DevServer, startDevServer } from '../../infra/temporal';
import { CPU_TASK_QUEUE, DEFAULT_NAMESPACE, GPU_TASK_QUEUE } from '../../lib/constants';
import { workflowIdFor } from '../../lib/pipeline/config';
import type { PipelineInput, PipelineResult } from '../../lib/pipeline/types';
import { repoRoot } from '../../lib/settings';
import { GpuLeasePool } from '../../lib/trainer/gpu-leases';
import { createCpuWorker } from '../../workers/cpu';
import { createGpuWorker } from '../../workers/gpu';

export interface PipelineEnv {
  client: Client;
  server: DevServer;
  bundle: WorkflowBundle;
  workDir: string;
  defaultArtifactRoot: string;
  /** Aborting it is what `cotmae worker` does on SIGTERM (trainers checkpoint at once). */
  drain: AbortController;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

export interface PipelineEnvOptions {
  /** Run the GPU worker in this process too (default true); false when a test runs it as its own process. */
  gpuWorker?: boolean;
  /** Devices the GPU worker leases (default one). */
  gpus?: string[];
  /** The trainer program (default: the real Python trainer). */
  trainer?: TrainerCommand;
  /** CPU activity slots (default 2). */
  cpuActivities?: number;
}

/** A BERT small enough that CPU steps take milliseconds (tests and recorded fixtures). */
export const TINY_MODEL_CONFIG = {
  hidden_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 64,
};

/** The fake trainer (test/support/fake-trainer.ts) as a trainer command: no PyTorch, same contract. */
export const FAKE_TRAINER: TrainerCommand = {
  python: process.execPath,
  args: [join(repoRoot(), 'dist', 'test', 'support', 'fake-trainer.js')],
};

export async function startPipelineEnv(opts: PipelineEnvOptions = {}): Promise<PipelineEnv> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
    runtimeInstalled = true;
  }
  const scratch = await mkdtemp(join(tmpdir(), 'cotmae-it-'));
  const server = await startDevServer({ freePorts: true, dbFilename: join(scratch, 'temporal.sqlite') });
  const native = await NativeConnection.connect({ address: server.address });
  const bundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
  });
  const drain = new AbortController();
  const deps: StageDeps = {
    defaultArtifactRoot: join(scratch, 'artifacts'),
    workDir: join(scratch, 'work'),
    drain: drain.signal,
    heartbeatEveryMs: 1000,
    ...(opts.trainer ? { trainer: opts.trainer } : {}),
  };
  const workers: Worker[] = [
    await createCpuWorker({
      connection: native,
      namespace: DEFAULT_NAMESPACE,
      deps,
      workflowBundle: bundle,
      maxActivities: opts.cpuActivities ?? 2,
    }),
  ];
  if (opts.gpuWorker !== false)
    workers.push(
      await createGpuWorker({
        connection: native,
        namespace: DEFAULT_NAMESPACE,
        deps: { ...deps, gpus: new GpuLeasePool(opts.gpus ?? ['0']) },
      }),
    );
  const running = Promise.all(workers.map((w) => w.run()));
  const connection = await Connection.connect({ address: server.address });
  return {
    client: new Client({ connection, namespace: DEFAULT_NAMESPACE }),
    server,
    bundle,
    workDir: deps.workDir,
    defaultArtifactRoot: deps.defaultArtifactRoot,
    drain,
    async stop() {
      drain.abort();
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
      await connection.close();
      await native.close();
      await server.stop();
    },
  };
}

/** Starts `input` as the CLI would (workflow id pipeline-<run_id>, shared CPU queue). */
export async function startPipeline(env: PipelineEnv, input: PipelineInput): Promise<WorkflowHandle> {
  return env.client.workflow.start('pipeline', {
    taskQueue: CPU_TASK_QUEUE,
    workflowId: workflowIdFor(input.run_id as string),
    args: [input],
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
  });
}

export async function runPipeline(env: PipelineEnv, input: PipelineInput) {
  const handle = await startPipeline(env, input);
  return { handle, result: (await handle.result()) as PipelineResult };
}

/** Every message of a failure's cause chain, joined (what a user would read, outermost first). */
export function failureText(err: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = err; c instanceof Error; c = c.cause) {
    const type = (c as { type?: unknown }).type;
    parts.push(`${c.name}${typeof type === 'string' ? `(${type})` : ''}: ${c.message}`);
  }
  return parts.join(' | ');
}

/** Number of events and bytes of a workflow's history, as the server counts them (its limits use these). */
export async function historySize(
  client: Client,
  workflowId: string,
): Promise<{ events: number; bytes: number }> {
  const d = await client.workflow.getHandle(workflowId).describe();
  return { events: d.historyLength, bytes: d.historySize ?? Number.NaN };
}

export { GPU_TASK_QUEUE };
