/**
 * The embedded defaults: a Temporal dev server (SQLite under the state dir, Web UI on) and both workers in
 * this process. Used by `cotmae run` / `cotmae demo` when TEMPORAL_ADDRESS is not set. The workers serve
 * private task queues (`cotmae-cpu@<id>`, `cotmae-gpu@<id>`), so joining a dev server that other runs use
 * never lets this process execute their tasks, nor theirs execute ours.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, type Worker } from '@temporalio/worker';
import type { StageDeps } from '../activities/support';
import { runningDevServer, startDevServer } from '../infra/temporal';
import { DEFAULT_NAMESPACE, embeddedQueues } from '../lib/constants';
import { GpuLeasePool, parseGpuSpec } from '../lib/trainer/gpu-leases';
import { createCpuWorker } from '../workers/cpu';
import { createGpuWorker } from '../workers/gpu';

export interface Embedded {
  client: Client;
  uiUrl: string;
  address: string;
  /** The private CPU queue: start workflows here. */
  taskQueue: string;
  stop(): Promise<void>;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
      .once('error', () => resolve(false))
      .once('listening', () => probe.close(() => resolve(true)))
      .listen(port, '127.0.0.1');
  });
}

/** A server of our own (stopped with the command), or the one `make temporal-up` left in this state dir (kept). */
async function devServer(): Promise<{ address: string; uiUrl: string; stop(): Promise<void> }> {
  const running = await runningDevServer();
  if (running) return { ...running, stop: async () => {} };
  const usual = (await portIsFree(7233)) && (await portIsFree(8233));
  return startDevServer(usual ? { port: 7233, uiPort: 8233 } : { freePorts: true });
}

/** Starts (or joins) the dev server and runs both workers, on private queues, in this process. */
export async function startEmbedded(deps: StageDeps): Promise<Embedded> {
  const server = await devServer();
  const queues = embeddedQueues(`${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`);
  const workers: Worker[] = [];
  let running: Promise<unknown> = Promise.resolve();
  let native: NativeConnection | undefined;
  let connection: Connection | undefined;
  const drain = new AbortController();
  try {
    native = await NativeConnection.connect({ address: server.address });
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
    });
    const namespace = DEFAULT_NAMESPACE;
    const gpus = new GpuLeasePool(await parseGpuSpec(process.env.COTMAE_GPUS));
    const workerDeps = { ...deps, gpus, drain: drain.signal };
    workers.push(
      await createCpuWorker({
        connection: native,
        namespace,
        deps: workerDeps,
        workflowBundle,
        taskQueue: queues.cpu,
      }),
    );
    workers.push(
      await createGpuWorker({ connection: native, namespace, deps: workerDeps, taskQueue: queues.gpu }),
    );
    running = Promise.all(workers.map((w) => w.run()));
    connection = await Connection.connect({ address: server.address });
  } catch (err) {
    await server.stop();
    throw err;
  }
  const client = new Client({ connection, namespace: DEFAULT_NAMESPACE });
  return {
    client,
    uiUrl: server.uiUrl,
    address: server.address,
    taskQueue: queues.cpu,
    async stop() {
      drain.abort();
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running.catch(() => undefined);
      await connection?.close();
      await native?.close();
      await server.stop();
    },
  };
}
