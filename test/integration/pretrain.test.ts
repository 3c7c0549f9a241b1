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
import { type PipelineEnv, startPipelineEnv } from '../support/pipeline-env';
import { startTestS3, type TestS3 } from '../support/s3-env';

const BUCKET = 'cotmae-pretrain-it';
const ROOT = `s3://${BUCKET}/cotmae`;
const CHECKPOINT_EVERY = 50;
const MAX_STEPS = 600;

/** A tiny BERT so that CPU steps are fast but the run still spans several checkpoints. */
const TINY_PRETRAIN = {
  model_config: { hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64 },
  max_steps: MAX_STEPS,
  batch_size: 8,
  lr: 0.001,
  sparse_top_k: 64,
  checkpoint_every: CHECKPOINT_EVERY,
  keep_checkpoints: 2,
  log_every: 10,
  seed: 11,
};

function startGpuWorker(address: string, workDir: string): ChildProcess {
  const child = spawn(process.execPath, [join(repoRoot(), 'dist', 'cli', 'main.js'), 'worker', 'gpu'], {
    env: { ...process.env, TEMPORAL_ADDRESS: address, COTMAE_WORK_DIR: workDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.setEncoding('utf8').on('data', () => {});
  return child;
}

function processesMentioning(text: string): number[] {
  const out = spawnSync('ps', ['-eo', 'pid,stat,args'], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .filter((line) => line.includes(text) && !/^\s*\d+\s+Z/.test(line))
    .map((line) => Number.parseInt(line.trim(), 10));
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
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
          training: { heartbeat_timeout_s: 5, max_attempts: 5 },
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
  });
});
