/**
 * Orchestration on the real Temporal dev server with the real workers and the fake trainer (same CLI
 * contract as the Python one, no PyTorch; its behaviour per run is chosen by the config's `seed`): GPU leases,
 * bounded histories, stall and upload-failure handling, OOM classification, cancellation, run-id ownership,
 * checked reuse and cross-run caching, bad artifact roots. Each test names the issue behaviour it checks.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { startRun } from '../../cli/commands/run';
import { isCommitted, openStore, readArtifactFile } from '../../lib/artifacts';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { writeDemoCollection } from '../../lib/demo/generate';
import type { PipelineInput, PipelineResult } from '../../lib/pipeline/types';
import { liveProgress } from '../../lib/temporal/live-progress';
import { storedCheckpointSteps } from '../../lib/trainer/checkpoints';
import {
  FAKE_TRAINER,
  failureText,
  historySize,
  type PipelineEnv,
  runPipeline,
  startPipeline,
  startPipelineEnv,
  TINY_MODEL_CONFIG,
} from '../support/pipeline-env';
import { processesMentioning, waitFor } from '../support/processes';

/** Behaviours of the fake trainer, by config seed (written to the file the fake trainer reads). */
const BEHAVIOURS: Record<number, Record<string, unknown>> = {
  1: { step_ms: 2 }, // quick and healthy
  2: { step_ms: 150, print_env: true }, // slow enough for two to overlap
  3: { step_ms: 150, print_env: true },
  4: { step_ms: 1, log_every_override: 1 }, // many progress lines
  5: { step_ms: 5, hang_after_step: 3 }, // hung trainer
  6: { step_ms: 30, dangling_checkpoint_at: 4 }, // its checkpoint upload fails
  7: { step_ms: 5, oom_at_step: 2 },
  8: { step_ms: 200 }, // slow: cancelled mid-run
};

const SMALL_PREP = { shard_bytes: 65536, max_parallel_shards: 2, vocab_size: 600 };

function fakePretrain(seed: number, extra: Record<string, unknown> = {}) {
  return {
    model_config: TINY_MODEL_CONFIG,
    max_steps: 20,
    batch_size: 4,
    checkpoint_every: 5,
    log_every: 5,
    seed,
    ...extra,
  };
}

async function activityAttempts(env: PipelineEnv, workflowId: string, type: string): Promise<number[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, string>();
  const attempts: number[] = [];
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '');
    const started = e.activityTaskStartedEventAttributes;
    if (started && scheduled.get(String(started.scheduledEventId)) === type)
      attempts.push(started.attempt ?? 0);
  }
  return attempts;
}

async function failureOf(run: Promise<unknown>): Promise<string> {
  const err = await run.then(
    () => assert.fail('the run should fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, `not a workflow failure: ${String(err)}`);
  return failureText(err);
}

describe('orchestration (real Temporal, fake trainer)', { timeout: 900_000 }, () => {
  let env: PipelineEnv;
  let scratch: string;
  let corpus: string;
  let corpusB: string;
  let artifacts: string;

  const input = (runId: string, extra: Partial<PipelineInput> = {}): PipelineInput => ({
    run_id: runId,
    artifacts,
    corpus: { source: corpus },
    prepare_corpus: SMALL_PREP,
    pretrain: fakePretrain(1),
    training: { heartbeat_timeout_s: 10, max_attempts: 2 },
    ...extra,
  });

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'cotmae-orch-'));
    const behaviours = join(scratch, 'behaviours.json');
    await writeFile(behaviours, JSON.stringify(BEHAVIOURS));
    env = await startPipelineEnv({
      gpus: ['0', '1'],
      trainer: { python: FAKE_TRAINER.python, args: [...FAKE_TRAINER.args, '--behaviours', behaviours] },
    });
    corpus = join(scratch, 'demo-a');
    corpusB = join(scratch, 'demo-b');
    artifacts = join(scratch, 'artifacts');
    await writeDemoCollection(corpus, { documents: 30, queriesPerDocument: 1, seed: 5 });
    await writeDemoCollection(corpusB, { documents: 24, queriesPerDocument: 1, seed: 9 });
  });
  after(async () => env?.stop());

  it('§1 leases: a worker with 2 devices runs 2 trainings at once on disjoint devices', async () => {
    const [a, b] = await Promise.all([
      runPipeline(env, input('lease-a', { pretrain: fakePretrain(2) })),
      runPipeline(env, input('lease-b', { pretrain: fakePretrain(3) })),
    ]);
    const info = await Promise.all(
      [a.result, b.result].map(async (r) => {
        const store = openStore(r.pretrain?.uri ?? '');
        const body = await readArtifactFile(store, '', 'model/fake.json');
        await store.close();
        return JSON.parse(body.toString('utf8')) as {
          cuda_visible_devices: string;
          started_ms: number;
          finished_ms: number;
        };
      }),
    );
    const [x, y] = info as [(typeof info)[0], (typeof info)[0]];
    assert.notEqual(x.cuda_visible_devices, y.cuda_visible_devices, 'each training holds its own device');
    assert.deepEqual([x.cuda_visible_devices, y.cuda_visible_devices].sort(), ['0', '1']);
    assert.ok(x.started_ms < y.finished_ms && y.started_ms < x.finished_ms, 'the two trainings overlapped');
  });

  it('§2 progress lives in heartbeats: 1,000 logged steps leave both histories under 200 events', async () => {
    const { result } = await runPipeline(
      env,
      input('history', {
        pretrain: fakePretrain(4, { max_steps: 1000, log_every: 1, checkpoint_every: 250 }),
      }),
    );
    assert.equal(result.pretrain?.stats.steps, 1000);
    const parent = await historySize(env.client, 'pipeline-history');
    const child = await historySize(env.client, 'pipeline-history/pretrain');
    console.log(
      `history after 1,000 logged steps: pipeline ${parent.events} events / ${parent.bytes} B, pretrain ${child.events} events / ${child.bytes} B`,
    );
    assert.ok(parent.events < 200, `pipeline history has ${parent.events} events`);
    assert.ok(child.events < 200, `pretrain history has ${child.events} events`);
  });

  it('§3 a hung trainer is stopped after stall_timeout_s; the attempt fails retryably and the retry resumes', async () => {
    const { handle, result } = await runPipeline(
      env,
      input('stall', {
        pretrain: fakePretrain(5),
        training: { heartbeat_timeout_s: 30, max_attempts: 3, stages: { pretrain: { stall_timeout_s: 2 } } },
      }),
    );
    // Attempt 1 hung after step 3 and was stopped (SIGTERM → checkpoint); attempt 2 resumed from it.
    assert.deepEqual(await activityAttempts(env, 'pipeline-stall/pretrain', 'runTrainerStage'), [2]);
    assert.equal(result.pretrain?.stats.resumed_from_step, 3);
    assert.equal(result.pretrain?.stats.steps, 20);
    assert.equal((await handle.describe()).status.name, 'COMPLETED');
    assert.deepEqual(processesMentioning('pipeline-stall'), [], 'no hung trainer left behind');
  });

  it('§3 a failed checkpoint upload fails that attempt only: the worker and a concurrent training live on', async () => {
    const bad = startPipeline(env, input('upload-fails', { pretrain: fakePretrain(6) }));
    const good = runPipeline(env, input('upload-ok', { pretrain: fakePretrain(2) }));
    const text = await failureOf((await bad).result());
    assert.match(text, /upload|checkpoint/i, text);
    const ok = await good;
    assert.equal(ok.result.pretrain?.stats.steps, 20, 'the other training finished on the same worker');
    const after = await runPipeline(env, input('after-upload-failure', { pretrain: fakePretrain(1) }));
    assert.ok(after.result.pretrain, 'the worker still serves new trainings');
  });

  it('§3 CUDA out of memory is not retried and says which knob to lower', async () => {
    const handle = await startPipeline(env, input('oom', { pretrain: fakePretrain(7) }));
    const text = await failureOf(handle.result());
    assert.match(text, /TrainerOutOfMemory|out of memory/i, text);
    assert.match(text, /batch_size/, text);
    assert.deepEqual(await activityAttempts(env, 'pipeline-oom/pretrain', 'runTrainerStage'), [1]);
  });

  it('§4 cancelling a run stops its trainer within 10 s, uploads the checkpoint, and ends Canceled', async () => {
    const handle = await startPipeline(
      env,
      input('cancel', { pretrain: fakePretrain(8, { max_steps: 400, checkpoint_every: 3 }) }),
    );
    const store = openStore(artifacts);
    await waitFor('a stored checkpoint', 120_000, async () =>
      (await storedCheckpointSteps(store, 'runs/cancel/pretrain/')).length > 0 ? true : undefined,
    );
    // What `cotmae status` shows: the step, loss and device come from the activity's heartbeat details.
    const live = await waitFor('training progress in the heartbeat details', 30_000, async () => {
      const stage = (await liveProgress(env.client, 'pipeline-cancel')).progress?.stages.find(
        (s) => s.stage === 'pretrain',
      );
      return (stage?.done ?? 0) > 0 && stage?.counts?.loss !== undefined ? stage : undefined;
    });
    assert.equal(live.total, 400);
    assert.match(live.message ?? '', /(training|uploading) on [01]/);
    const before = (await storedCheckpointSteps(store, 'runs/cancel/pretrain/')).at(-1) ?? 0;
    const t0 = Date.now();
    await handle.cancel();
    await waitFor('the trainer to exit', 10_000, async () =>
      processesMentioning('runs/cancel').length === 0 && processesMentioning('pipeline-cancel').length === 0
        ? true
        : undefined,
    );
    const stoppedMs = Date.now() - t0;
    const err = await handle.result().catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    assert.equal(
      (await env.client.workflow.getHandle('pipeline-cancel/pretrain').describe()).status.name,
      'CANCELLED',
    );
    const afterSteps = await storedCheckpointSteps(store, 'runs/cancel/pretrain/');
    assert.ok((afterSteps.at(-1) ?? 0) >= before, 'the interrupted step was checkpointed and uploaded');
    console.log(`cancel → trainer gone in ${stoppedMs} ms; checkpoints ${afterSteps.join(',')}`);
    await store.close();
  });

  it('§4 cancelling during shard preparation ends Canceled and the shard activity honours it', async () => {
    const big = join(scratch, 'big');
    await writeDemoCollection(big, { documents: 3000, queriesPerDocument: 1, seed: 13 });
    const handle = await startPipeline(
      env,
      input('cancel-prep', {
        corpus: { source: big },
        prepare_corpus: { shard_bytes: 65536, max_parallel_shards: 1, vocab_size: 600 },
        pretrain: null,
      }),
    );
    await waitFor('a corpus activity running', 60_000, async () => {
      const d = await env.client.workflow
        .getHandle('pipeline-cancel-prep/prepare-corpus')
        .describe()
        .catch(() => undefined);
      return (d?.raw.pendingActivities ?? []).length > 0 ? true : undefined;
    });
    await handle.cancel();
    await handle.result().catch(() => undefined);
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    const child = env.client.workflow.getHandle('pipeline-cancel-prep/prepare-corpus');
    assert.equal((await child.describe()).status.name, 'CANCELLED');
  });

  it('§5 one run id, one owner: a running id is refused, a failed one restarts, a completed one needs force', async () => {
    const running = await startRun(
      env.client,
      input('owner', { pretrain: fakePretrain(8, { max_steps: 60 }) }),
      CPU_TASK_QUEUE,
    );
    assert.equal(running, 'pipeline-owner');
    await assert.rejects(
      startRun(env.client, input('owner'), CPU_TASK_QUEUE),
      /already running as workflow pipeline-owner.*cotmae status owner/s,
    );
    await env.client.workflow.getHandle('pipeline-owner').cancel();
    await env.client.workflow
      .getHandle('pipeline-owner')
      .result()
      .catch(() => undefined);
    // Cancelled: starting it again is how it is retried.
    await startRun(env.client, input('owner'), CPU_TASK_QUEUE);
    await env.client.workflow.getHandle('pipeline-owner').result();
    await assert.rejects(startRun(env.client, input('owner'), CPU_TASK_QUEUE), /already completed.*--force/s);
    await startRun(env.client, input('owner', { force: ['pretrain'] }), CPU_TASK_QUEUE);
    const again = (await env.client.workflow.getHandle('pipeline-owner').result()) as PipelineResult;
    assert.deepEqual(
      again.cacheHits,
      ['tokenizer', 'prepare-corpus'],
      'forced pretrain re-ran; the rest was reused',
    );
  });

  it('§5 cross-run cache: an unchanged run reuses every stage; a changed pretrain config re-runs only pretrain', async () => {
    const cached = (runId: string, extra: Partial<PipelineInput> = {}) =>
      input(runId, {
        prepare_corpus: { ...SMALL_PREP, seed: 31 },
        pretrain: fakePretrain(1, { max_steps: 22 }),
        ...extra,
      });
    const first = await runPipeline(env, cached('cache-1'));
    // The tokenizer may come from an earlier test (same corpus, same tokenizer keys); the rest is new.
    assert.deepEqual(
      first.result.cacheHits.filter((s) => s !== 'tokenizer'),
      [],
    );
    const t0 = Date.now();
    const second = await runPipeline(env, cached('cache-2'));
    const secondMs = Date.now() - t0;
    assert.deepEqual(second.result.cacheHits, ['tokenizer', 'prepare-corpus', 'pretrain']);
    assert.equal(
      second.result.pretrain?.uri,
      first.result.pretrain?.uri,
      'the cached model is the first run’s',
    );
    assert.equal(second.result.pretrain?.reused, 'cache');
    const d = await second.handle.describe();
    assert.deepEqual(d.searchAttributes.CacheHits, ['tokenizer', 'prepare-corpus', 'pretrain']);
    console.log(`unchanged re-run: ${secondMs} ms of pipeline time, every stage a cache hit`);
    const third = await runPipeline(env, cached('cache-3', { pretrain: fakePretrain(1, { max_steps: 25 }) }));
    assert.deepEqual(third.result.cacheHits, ['tokenizer', 'prepare-corpus'], 'nothing upstream re-ran');
    assert.equal(third.result.pretrain?.stats.steps, 25);
    const fourth = await runPipeline(
      env,
      cached('cache-4', { prepare_corpus: { ...SMALL_PREP, seed: 31, max_passage_tokens: 64 } }),
    );
    assert.deepEqual(
      fourth.result.cacheHits,
      ['tokenizer'],
      'corpus config changed: prepare-corpus and pretrain re-ran',
    );
  });

  it('§5/§7 stale reuse: the same run id on another corpus fails naming both keys, and --force redoes it', async () => {
    // A config no other test uses, so that the first run writes its own artifacts (no cache hit).
    const prep = { ...SMALL_PREP, seed: 57 };
    const first = await runPipeline(env, input('stale', { prepare_corpus: prep, pretrain: null }));
    assert.ok(!first.result.cacheHits.includes('prepare-corpus'));
    const handle = await startPipeline(
      env,
      input('stale', { corpus: { source: corpusB }, prepare_corpus: prep, pretrain: null }),
    );
    const text = await failureOf(handle.result());
    assert.match(text, /StaleArtifact/, text);
    assert.match(text, /[0-9a-f]{12}.*[0-9a-f]{12}/s, text);
    assert.match(text, /--force/, text);
    const { result } = await runPipeline(
      env,
      input('stale', { corpus: { source: corpusB }, prepare_corpus: prep, pretrain: null, force: true }),
    );
    assert.equal(
      result.corpus.stats.documents,
      24,
      'the corrected corpus was prepared, not the old shard reused',
    );
    assert.equal(result.corpus.stats.dropped_qrels, 0);
  });

  it('§7 a corrected corpus re-run never meets the old error: the stale artifacts are named, --force redoes them', async () => {
    const dup = join(scratch, 'dup');
    await writeDemoCollection(dup, { documents: 20, queriesPerDocument: 1, seed: 17 });
    const original = await readFile(join(dup, 'corpus.jsonl'), 'utf8');
    const firstLine = original.split('\n')[0] as string;
    await writeFile(join(dup, 'corpus.jsonl'), `${original}${firstLine}\n`); // the first document twice
    const prep = { ...SMALL_PREP, seed: 71 };
    const run = (extra: Partial<PipelineInput> = {}) =>
      input('dup-fixed', { corpus: { source: dup }, prepare_corpus: prep, pretrain: null, ...extra });
    const text = await failureOf((await startPipeline(env, run())).result());
    assert.match(text, /duplicate doc id/, text);
    await writeFile(join(dup, 'corpus.jsonl'), original); // corrected
    const again = await failureOf((await startPipeline(env, run())).result());
    assert.doesNotMatch(again, /duplicate doc id/, 'the old error is not replayed from stale shards');
    // The tokenizer trained on the broken corpus is the first stale artifact met; the message says why.
    assert.match(again, /StaleArtifact.*differs in inputs\.corpus.*--force tokenizer/s, again);
    const { result } = await runPipeline(env, run({ from_stage: 'tokenizer' }));
    assert.equal(result.corpus.stats.documents, 20);
  });

  it('§7 the same run id on two artifact roots never resumes or publishes the other root’s model', async () => {
    const rootA = join(scratch, 'root-a');
    const rootB = join(scratch, 'root-b');
    const a = await runPipeline(env, input('same-id', { artifacts: rootA }));
    const b = await runPipeline(
      env,
      input('same-id', { artifacts: rootB, corpus: { source: corpusB }, force: true }),
    );
    const state = async (uri: string) => {
      const store = openStore(uri);
      const s = JSON.parse((await readArtifactFile(store, '', 'model/fake.json')).toString('utf8')) as {
        data_digest: string;
      };
      await store.close();
      return s;
    };
    const sa = await state(a.result.pretrain?.uri ?? '');
    const sb = await state(b.result.pretrain?.uri ?? '');
    assert.notEqual(sa.data_digest, sb.data_digest, 'root B’s model was trained on corpus B');
    assert.equal(b.result.pretrain?.stats.resumed_from_step, 0, 'nothing was resumed from root A');
    assert.equal(b.result.pretrain?.reused, undefined);
  });

  it('§7 a bad artifact root fails at once with a ConfigError naming artifacts, never retried', async () => {
    const file = join(scratch, 'a-file');
    await writeFile(file, 'x');
    for (const [id, root] of [
      ['proc-root', '/proc/x/artifacts'],
      ['file-root', join(file, 'sub')],
    ] as const) {
      const t0 = Date.now();
      const handle = await startPipeline(env, input(id, { artifacts: root }));
      const text = await failureOf(handle.result());
      assert.match(text, /artifacts/, text);
      assert.match(text, /ConfigError|config artifacts/, text);
      assert.ok(Date.now() - t0 < 20_000, `${root}: took ${Date.now() - t0} ms`);
      assert.deepEqual(await activityAttempts(env, `pipeline-${id}`, 'validatePipelineInput'), [1]);
    }
  });

  it('§7 a truncated .gz and an empty corpus are one non-retried BadInput naming the file', async () => {
    const gz = join(scratch, 'gz');
    await mkdir(gz);
    const full = spawnSync('gzip', ['-c'], { input: await readFile(join(corpus, 'corpus.jsonl')) }).stdout;
    await writeFile(join(gz, 'corpus.jsonl.gz'), full.subarray(0, Math.floor(full.length / 2)));
    const text = await failureOf(
      (await startPipeline(env, input('truncated', { corpus: { source: gz }, pretrain: null }))).result(),
    );
    assert.match(text, /corpus\.jsonl\.gz/, text);
    assert.match(text, /BadInput/, text);
    const empty = join(scratch, 'empty');
    await mkdir(empty);
    await writeFile(join(empty, 'corpus.jsonl'), '');
    const text2 = await failureOf(
      (await startPipeline(env, input('empty', { corpus: { source: empty }, pretrain: null }))).result(),
    );
    assert.match(text2, /no documents/i, text2);
    assert.ok(text2.includes(empty), `names the user's path: ${text2}`);
    assert.equal(await isCommitted(openStore(artifacts), 'runs/empty/prepare-corpus'), false);
  });

  it('§7 pretrain keys are validated up front, every problem at once', async () => {
    const handle = await startPipeline(
      env,
      input('bad-keys', { pretrain: { max_steps: 'sixty', learning_rate: 0.1 } }),
    );
    const text = await failureOf(handle.result());
    assert.match(text, /pretrain\.max_steps/, text);
    assert.match(text, /pretrain\.learning_rate/, text);
    assert.deepEqual(await activityAttempts(env, 'pipeline-bad-keys', 'validatePipelineInput'), [1]);
  });
});
