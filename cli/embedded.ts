/**
 * The embedded defaults: a Temporal dev server (SQLite under .state/, Web UI on) and both workers in
 * this process. Used by `cotmae run` / `cotmae demo` when TEMPORAL_ADDRESS is not set.
 */
import { createServer } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, type Worker } from '@temporalio/worker';
import type { StageDeps } from '../activities/support';
import { runningDevServer, startDevServer } from '../infra/temporal';
import { DEFAULT_NAMESPACE } from '../lib/constants';
import { createCpuWorker } from '../workers/cpu';
import { createGpuWorker } from '../workers/gpu';

export interface Embedded {
  client: Client;
  uiUrl: string;
  address: string;
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

/** A server of our own (stopped with the command), or the one `make temporal-up` left running (kept). */
async function devServer(): Promise<{ address: string; uiUrl: string; stop(): Promise<void> }> {
  const running = await runningDevServer();
  if (running) return { ...running, stop: async () => {} };
  const usual = (await portIsFree(7233)) && (await portIsFree(8233));
  return startDevServer(usual ? { port: 7233, uiPort: 8233 } : { freePorts: true });
}

/** Starts (or joins) the dev server and runs both workers in this process. */
export async function startEmbedded(deps: StageDeps): Promise<Embedded> {
  const server = await devServer();
  const workers: Worker[] = [];
  let running: Promise<unknown> = Promise.resolve();
  let native: NativeConnection | undefined;
  let connection: Connection | undefined;
  try {
    native = await NativeConnection.connect({ address: server.address });
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
    });
    const namespace = DEFAULT_NAMESPACE;
    workers.push(await createCpuWorker({ connection: native, namespace, deps, workflowBundle }));
    workers.push(await createGpuWorker({ connection: native, namespace, deps }));
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
    async stop() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running.catch(() => undefined);
      await connection?.close();
      await native?.close();
      await server.stop();
    },
  };
}
