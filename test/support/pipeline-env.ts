/**
 * One real Temporal dev server (free ports) plus the project's CPU and GPU workers in this process,
 * shared by the integration tests of a file: start it in `before`, stop it in `after`.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  type Worker,
  type WorkflowBundle,
} from '@temporalio/worker';
import { type DevServer, startDevServer } from '../../infra/temporal';
import { DEFAULT_NAMESPACE } from '../../lib/constants';
import { createCpuWorker } from '../../workers/cpu';
import { createGpuWorker } from '../../workers/gpu';

export interface PipelineEnv {
  client: Client;
  server: DevServer;
  bundle: WorkflowBundle;
  workDir: string;
  defaultArtifactRoot: string;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

export interface PipelineEnvOptions {
  /** Run the GPU worker in this process too (default true); false when a test runs it as its own process. */
  gpuWorker?: boolean;
}

export async function startPipelineEnv(opts: PipelineEnvOptions = {}): Promise<PipelineEnv> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const scratch = await mkdtemp(join(tmpdir(), 'cotmae-it-'));
  const server = await startDevServer({ freePorts: true, dbFilename: join(scratch, 'temporal.sqlite') });
  const native = await NativeConnection.connect({ address: server.address });
  const bundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
  });
  const deps = { defaultArtifactRoot: join(scratch, 'artifacts'), workDir: join(scratch, 'work') };
  const workers: Worker[] = [
    await createCpuWorker({ connection: native, namespace: DEFAULT_NAMESPACE, deps, workflowBundle: bundle }),
  ];
  if (opts.gpuWorker !== false)
    workers.push(await createGpuWorker({ connection: native, namespace: DEFAULT_NAMESPACE, deps }));
  const running = Promise.all(workers.map((w) => w.run()));
  const connection = await Connection.connect({ address: server.address });
  return {
    client: new Client({ connection, namespace: DEFAULT_NAMESPACE }),
    server,
    bundle,
    workDir: deps.workDir,
    defaultArtifactRoot: deps.defaultArtifactRoot,
    async stop() {
      for (const w of workers) w.shutdown();
      await running;
      await connection.close();
      await native.close();
      await server.stop();
    },
  };
}
