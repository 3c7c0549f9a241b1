/**
 * Corpus preparation → CoT-MAE pre-training end to end on real Temporal + real S3 + the real trainer, with
 * the GPU worker as its own process: it is SIGKILLed once a checkpoint is in the bucket, a new worker (with
 * an empty work dir, as on another machine) takes over, and the run must finish having resumed from that
 * checkpoint — the step counter continues and no logged step is repeated.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetchArtifact, openStore, verifyArtifact } from '../../lib/artifacts';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { writeDemoCollection } from '../../lib/demo/generate';
import type { PipelineResult } from '../../lib/pipeline/types';
import { repoRoot } from '../../lib/settings';
import { storedCheckpointSteps } from '../../lib/trainer/checkpoints';
import { trainerPython } from '../../lib/trainer/python';
import { type PipelineEnv, startPipelineEnv, TINY_MODEL_CONFIG } from '../support/pipeline-env';
import { processesMentioning, waitFor } from '../support/processes';
import { startTestS3, type TestS3 } from '../support/s3-env';

const BUCKET = 'cotmae-pretrain-it';
const ROOT = `s3://${BUCKET}/cotmae`;
const CHECKPOINT_EVERY = 25;
const MAX_STEPS = 200;

/** A tiny BERT so that CPU steps are fast but the run still spans several checkpoints. */
const TINY_PRETRAIN = {
  model_config: TINY_MODEL_CONFIG,
  max_steps: MAX_STEPS,
  batch_size: 8,
  lr: 0.001,
  sparse_top_k: 64,
  checkpoint_every: CHECKPOINT_EVERY,
  keep_checkpoints: 2,
  log_every: 10,
  seed: 11,
};

function startGpuWorker(address: string, workDir: string, graceS = 30): ChildProcess {
  const child = spawn(
    process.execPath,
    [join(repoRoot(), 'dist', 'cli', 'main.js'), 'worker', 'gpu', '--shutdown-grace', String(graceS)],
    {
      env: { ...process.env, TEMPORAL_ADDRESS: address, COTMAE_WORK_DIR: workDir },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    logs.set(child, ((logs.get(child) ?? '') + text).slice(-20_000));
  });
  return child;
}

/** The tail of each spawned worker's stderr, printed when a test about it fails. */
const logs = new Map<ChildProcess, string>();

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('pre-training survives a killed GPU worker (real Temporal, S3, trainer)', {
  timeout: 900_000,
}, () => {
  let s3: TestS3;
  let env: PipelineEnv;
  const workers: ChildProcess[] = [];

  before(async () => {
    s3 = await startTestS3(BUCKET);
    env = await startPipelineEnv({ gpuWorker: false });
  });

  after(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
    await env?.stop();
    await s3?.stop();
  });

  it('kills the GPU worker mid-run; a new worker resumes from the uploaded checkpoint', async () => {
    const t0 = Date.now();
    const scratch = await mkdtemp(join(tmpdir(), 'cotmae-pretrain-it-'));
    const corpus = join(scratch, 'demo');
    await writeDemoCollection(corpus, { documents: 40, queriesPerDocument: 1, seed: 21 });
    const workDirA = join(scratch, 'gpu-worker-a');
    const workDirB = join(scratch, 'gpu-worker-b');
    workers.push(startGpuWorker(env.server.address, workDirA));

    const handle = await env.client.workflow.start('pipeline', {
      taskQueue: CPU_TASK_QUEUE,
      workflowId: 'pipeline-it-pretrain',
      args: [
        {
          run_id: 'it-pretrain',
          artifacts: ROOT,
          corpus: { source: corpus },
          prepare_corpus: { vocab_size: 1000 },
          pretrain: TINY_PRETRAIN,
          training: { heartbeat_timeout_s: 10, max_attempts: 5 },
        },
      ],
    });

    const store = openStore(ROOT);
    const stagePrefix = 'runs/it-pretrain/pretrain/';
    const killedAfter = await waitFor('a checkpoint in the bucket', 300_000, async () => {
      const steps = await storedCheckpointSteps(store, stagePrefix);
      return steps.length > 0 ? steps.at(-1) : undefined;
    });
    assert.ok(killedAfter < MAX_STEPS, 'the run must still be going when the worker is killed');
    workers[0]?.kill('SIGKILL');
    // The trainer follows its parent (PDEATHSIG): no orphan keeps training in worker A's work dir.
    await waitFor('worker A trainer to exit', 120_000, async () =>
      processesMentioning(workDirA).length === 0 ? true : undefined,
    );
    workers.push(startGpuWorker(env.server.address, workDirB));

    const result = (await handle.result()) as PipelineResult;
    assert.ok(result.pretrain, 'pipeline result has a pretrain stage');
    const resumed = result.pretrain.stats.resumed_from_step ?? 0;
    assert.ok(
      resumed >= killedAfter,
      `resumed from ${resumed}, a checkpoint at ${killedAfter} was in the bucket`,
    );
    assert.equal(resumed % CHECKPOINT_EVERY, 0);
    assert.equal(result.pretrain.stats.steps, MAX_STEPS);

    // The run's log is continuous: steps strictly increasing, none repeated across the two attempts.
    const local = join(scratch, 'fetched');
    await verifyArtifact(store, stagePrefix);
    await fetchArtifact(store, stagePrefix, local);
    const steps = readFileSync(join(local, 'train_log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { step: number }).step);
    assert.deepEqual(
      steps,
      Array.from({ length: MAX_STEPS / 10 }, (_, i) => (i + 1) * 10),
    );

    // The activity really ran twice (attempt 2 resumed), and the second attempt ran on worker B.
    const child = env.client.workflow.getHandle('pipeline-it-pretrain/pretrain');
    const attempts = ((await child.fetchHistory()).events ?? [])
      .map((e) => e.activityTaskStartedEventAttributes?.attempt)
      .filter((a): a is number => typeof a === 'number');
    assert.ok(Math.max(...attempts) >= 2, `attempts: ${attempts.join(',')}`);

    // The published encoder loads with transformers.
    const check = spawnSync(
      trainerPython(),
      [
        '-c',
        'import sys; from transformers import AutoModelForMaskedLM as M; m = M.from_pretrained(sys.argv[1]); print(m.config.hidden_size)',
        join(local, 'model'),
      ],
      { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } },
    );
    assert.equal(check.status, 0, check.stderr);
    assert.equal(check.stdout.trim(), '32');
    await store.close();
    console.log(`kill-and-resume test: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });

  it('SIGTERM to the GPU worker: the trainer checkpoints at once, the worker exits within its grace, another resumes', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'cotmae-shutdown-it-'));
    const corpus = join(scratch, 'demo');
    await writeDemoCollection(corpus, { documents: 40, queriesPerDocument: 1, seed: 23 });
    // Only worker A may serve the GPU queue when it gets SIGTERM: the previous test's workers go first.
    for (const w of workers.splice(0)) {
      w.kill('SIGTERM');
      await exited(w);
    }
    const grace = 20;
    const workerA = startGpuWorker(env.server.address, join(scratch, 'gpu-a'), grace);
    workers.push(workerA);
    const handle = await env.client.workflow.start('pipeline', {
      taskQueue: CPU_TASK_QUEUE,
      workflowId: 'pipeline-it-shutdown',
      args: [
        {
          run_id: 'it-shutdown',
          artifacts: ROOT,
          corpus: { source: corpus },
          prepare_corpus: { vocab_size: 1000 },
          // checkpoint_every larger than the run: the only checkpoint is the one SIGTERM writes.
          pretrain: { ...TINY_PRETRAIN, checkpoint_every: 10_000, seed: 12 },
          training: { heartbeat_timeout_s: 10, max_attempts: 5 },
        },
      ],
    });
    const store = openStore(ROOT);
    // Wait until training has logged a few steps (heartbeat details of the pending activity).
    await waitFor('training under way', 300_000, async () => {
      const d = await env.client.workflow
        .getHandle('pipeline-it-shutdown/pretrain')
        .describe()
        .catch(() => undefined);
      const beat = d?.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
      if (!beat?.data) return undefined;
      const details = JSON.parse(Buffer.from(beat.data).toString('utf8')) as {
        step?: number;
        phase?: string;
      };
      return details.phase === 'training' && (details.step ?? 0) >= 20 ? true : undefined;
    });
    const t0 = Date.now();
    workerA.kill('SIGTERM');
    await exited(workerA);
    const exitMs = Date.now() - t0;
    assert.ok(exitMs < grace * 1000, `worker A exited after ${exitMs} ms, grace ${grace} s`);
    const steps = await storedCheckpointSteps(store, 'runs/it-shutdown/pretrain/');
    assert.equal(
      steps.length,
      1,
      `the SIGTERM checkpoint was uploaded before exit: ${steps.join(',')}\n--- worker A ---\n${logs.get(workerA)}`,
    );
    const interrupted = steps[0] as number;
    workers.push(startGpuWorker(env.server.address, join(scratch, 'gpu-b')));
    const result = (await handle.result()) as PipelineResult;
    assert.equal(
      result.pretrain?.stats.resumed_from_step,
      interrupted,
      'worker B resumed from the shutdown checkpoint',
    );
    assert.equal(result.pretrain?.stats.steps, MAX_STEPS);
    console.log(
      `worker shutdown: exited ${exitMs} ms after SIGTERM (grace ${grace} s), checkpoint at step ${interrupted}`,
    );
    await store.close();
  });
});
