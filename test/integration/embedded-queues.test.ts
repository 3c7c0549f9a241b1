/**
 * Embedded runs stay private: an embedded `cotmae run` serves task queues of its own (`cotmae-cpu@<id>` /
 * `cotmae-gpu@<id>`), and a pipeline started on such a queue sends every child workflow and activity — GPU ones
 * included — to that process's queues only, even when other workers poll the shared queues of the same server.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { DEFAULT_NAMESPACE, embeddedQueues, gpuQueueFor } from '../../lib/constants';
import { writeDemoCollection } from '../../lib/demo/generate';
import { GpuLeasePool } from '../../lib/trainer/gpu-leases';
import { createCpuWorker } from '../../workers/cpu';
import { createGpuWorker } from '../../workers/gpu';
import { FAKE_TRAINER, type PipelineEnv, startPipelineEnv, TINY_MODEL_CONFIG } from '../support/pipeline-env';

describe('embedded task queues (real Temporal)', { timeout: 300_000 }, () => {
  let env: PipelineEnv;
  let native: NativeConnection;
  const workers: Worker[] = [];
  let running: Promise<unknown>;
  const queues = embeddedQueues('it-host-1');

  before(async () => {
    // env's workers poll the shared cotmae-cpu / cotmae-gpu queues: "another user's" workers.
    env = await startPipelineEnv({ trainer: FAKE_TRAINER });
    native = await NativeConnection.connect({ address: env.server.address });
    const deps = {
      defaultArtifactRoot: join(env.workDir, '..', 'embedded-artifacts'),
      workDir: join(env.workDir, '..', 'embedded-work'),
      trainer: FAKE_TRAINER,
      gpus: new GpuLeasePool(['0']),
    };
    workers.push(
      await createCpuWorker({
        connection: native,
        namespace: DEFAULT_NAMESPACE,
        deps,
        workflowBundle: env.bundle,
        taskQueue: queues.cpu,
      }),
      await createGpuWorker({
        connection: native,
        namespace: DEFAULT_NAMESPACE,
        deps,
        taskQueue: queues.gpu,
      }),
    );
    running = Promise.all(workers.map((w) => w.run()));
  });
  after(async () => {
    for (const w of workers) w.shutdown();
    await running;
    await native?.close();
    await env?.stop();
  });

  it('maps each CPU queue to its GPU twin', () => {
    assert.equal(gpuQueueFor('cotmae-cpu'), 'cotmae-gpu');
    assert.equal(gpuQueueFor(queues.cpu), queues.gpu);
  });

  it('a run on a private queue schedules every task on that process’s queues', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'cotmae-embedded-'));
    await writeDemoCollection(join(scratch, 'demo'), { documents: 20, queriesPerDocument: 1, seed: 4 });
    const handle = await env.client.workflow.start('pipeline', {
      taskQueue: queues.cpu,
      workflowId: 'pipeline-private',
      args: [
        {
          run_id: 'private',
          artifacts: join(scratch, 'artifacts'),
          corpus: { source: join(scratch, 'demo') },
          prepare_corpus: { vocab_size: 500 },
          pretrain: {
            model_config: TINY_MODEL_CONFIG,
            max_steps: 10,
            batch_size: 4,
            checkpoint_every: 5,
            log_every: 5,
          },
        },
      ],
    });
    await handle.result();
    const seen = new Set<string>();
    for (const id of ['pipeline-private', 'pipeline-private/prepare-corpus', 'pipeline-private/pretrain']) {
      const history = await env.client.workflow.getHandle(id).fetchHistory();
      for (const e of history.events ?? []) {
        const queue =
          e.activityTaskScheduledEventAttributes?.taskQueue?.name ??
          e.startChildWorkflowExecutionInitiatedEventAttributes?.taskQueue?.name ??
          e.workflowExecutionStartedEventAttributes?.taskQueue?.name;
        if (queue) seen.add(queue);
      }
    }
    assert.deepEqual([...seen].sort(), [queues.cpu, queues.gpu].sort());
  });
});
