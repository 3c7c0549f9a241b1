/**
 * The pipeline end to end on the real Temporal dev server with the real workers: corpus preparation on
 * the local-directory backend, replay determinism, bad input failing once with file:line and publishing
 * nothing, and a re-run reusing committed shards.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { isCommitted, openStore, readArtifactFile, verifyArtifact } from '../../lib/artifacts';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { writeDemoCollection } from '../../lib/demo/generate';
import type { PipelineProgress } from '../../lib/pipeline/progress';
import type { PipelineInput, PipelineResult } from '../../lib/pipeline/types';
import { type PipelineEnv, startPipelineEnv } from '../support/pipeline-env';

/** Small shards so that even the demo collection fans out over several shard activities. */
const SMALL_SHARDS = { shard_bytes: 65536, max_parallel_shards: 2, vocab_size: 2000 };

async function runPipeline(env: PipelineEnv, input: PipelineInput) {
  const handle = await env.client.workflow.start('pipeline', {
    taskQueue: CPU_TASK_QUEUE,
    workflowId: `pipeline-${input.run_id}`,
    args: [input],
  });
  return { handle, result: (await handle.result()) as PipelineResult };
}

describe('pipeline workflow (real Temporal, local artifact directory)', { timeout: 600_000 }, () => {
  let env: PipelineEnv;
  let corpus: string;
  let artifacts: string;

  before(async () => {
    env = await startPipelineEnv();
    const scratch = await mkdtemp(join(tmpdir(), 'cotmae-pipeline-'));
    corpus = join(scratch, 'demo');
    artifacts = join(scratch, 'artifacts');
    await writeDemoCollection(corpus, { documents: 60, queriesPerDocument: 1, seed: 7 });
  });
  after(async () => env?.stop());

  it('prepares the corpus in several shards and publishes a verified artifact', async () => {
    const { handle, result } = await runPipeline(env, {
      run_id: 'it-local',
      artifacts,
      corpus: { source: corpus },
      prepare_corpus: SMALL_SHARDS,
      pretrain: null,
    });
    assert.equal(result.runId, 'it-local');
    assert.equal(result.corpus.stats.documents, 60);
    assert.equal(result.corpus.stats.queries, 60);
    assert.equal(result.corpus.stats.qrels, 60);
    assert.ok(
      (result.corpus.stats.shards ?? 0) >= 2,
      `expected several shards, got ${result.corpus.stats.shards}`,
    );
    assert.ok((result.corpus.stats.passages ?? 0) > 60);
    assert.equal(result.corpus.stats.reused_shards, 0);

    const store = openStore(artifacts);
    const verified = await verifyArtifact(store, 'runs/it-local/prepare-corpus');
    assert.equal(verified.manifestSha256, result.corpus.manifestSha256);
    const paths = verified.manifest.files.map((f) => f.path);
    for (const expected of ['queries.jsonl', 'qrels/test.tsv', 'stats.json', 'corpus.json'])
      assert.ok(paths.includes(expected), `${expected} missing from ${paths.join(', ')}`);
    assert.ok(paths.some((p) => /^shards\/00001\/tokens\.bin$/.test(p)));
    assert.equal(verified.manifest.inputs.length, 2);
    // corpus.json's shard dirs are relative to the stage folder: every shard's files are in the manifest.
    const corpusIndex = JSON.parse(
      (await readArtifactFile(store, 'runs/it-local/prepare-corpus', 'corpus.json')).toString('utf8'),
    );
    for (const shard of corpusIndex.shards as { dir: string; files: Record<string, string> }[])
      for (const file of Object.values(shard.files))
        assert.ok(paths.includes(`${shard.dir}/${file}`), `${shard.dir}/${file} not in the manifest`);
    await verifyArtifact(store, 'runs/it-local/tokenizer');

    const progress = await handle.query<PipelineProgress>('progress');
    assert.equal(progress.state, 'completed');
    const stage = progress.stages.find((s) => s.stage === 'prepare-corpus');
    assert.equal(stage?.state, 'completed');
    assert.equal(stage?.artifact, result.corpus.uri);
    assert.equal(progress.stages.find((s) => s.stage === 'tokenizer')?.artifact, result.tokenizer.uri);

    const description = await handle.describe();
    assert.deepEqual(description.searchAttributes.PipelineRun, ['it-local']);
    assert.deepEqual(description.searchAttributes.Corpus, ['demo']);
    assert.deepEqual(description.searchAttributes.PipelineStage, ['done']);

    // Replay: the workflow code must reproduce the recorded history exactly.
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: env.bundle }, history, handle.workflowId);
    const child = env.client.workflow.getHandle('pipeline-it-local/prepare-corpus');
    await Worker.runReplayHistory(
      { workflowBundle: env.bundle },
      await child.fetchHistory(),
      child.workflowId,
    );
  });

  it('re-running the same run id reuses its committed stages (checked by cache key)', async () => {
    const input = {
      run_id: 'it-rerun',
      artifacts,
      corpus: { source: corpus },
      prepare_corpus: { ...SMALL_SHARDS, seed: 99 },
      pretrain: null,
    };
    const { result } = await runPipeline(env, input);
    assert.equal(result.corpus.stats.reused_shards, 0);
    assert.ok(
      !result.cacheHits.includes('prepare-corpus'),
      'a config no other test uses: prepared, not reused',
    );
    const rerun = await env.client.workflow.start('pipeline', {
      taskQueue: CPU_TASK_QUEUE,
      workflowId: 'pipeline-it-rerun',
      args: [input],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    });
    const rerunResult = (await rerun.result()) as PipelineResult;
    assert.deepEqual(rerunResult.cacheHits, ['tokenizer', 'prepare-corpus']);
    assert.equal(rerunResult.corpus.reused, 'run');
    assert.equal(rerunResult.corpus.manifestSha256, result.corpus.manifestSha256);
    await verifyArtifact(openStore(artifacts), 'runs/it-rerun/prepare-corpus');
  });

  it('fails without retry on a malformed corpus line, naming file:line, and publishes nothing', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'cotmae-bad-'));
    const bad = join(scratch, 'bad');
    await writeDemoCollection(bad, { documents: 12, queriesPerDocument: 1, seed: 3 });
    await appendFile(join(bad, 'corpus.jsonl'), '{"_id": "broken", "text": \n');
    const started = await env.client.workflow.start('pipeline', {
      taskQueue: CPU_TASK_QUEUE,
      workflowId: 'pipeline-it-bad',
      args: [{ run_id: 'it-bad', artifacts, corpus: { source: bad }, pretrain: null }],
    });
    const err = await started.result().then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    let cause: unknown = err.cause;
    const messages: string[] = [];
    while (cause instanceof Error) {
      messages.push(cause.message);
      cause = cause.cause;
    }
    assert.ok(
      messages.some((m) => m.includes('corpus.jsonl:13')),
      `no corpus.jsonl:13 in failure chain: ${messages.join(' | ')}`,
    );
    const history = await env.client.workflow.getHandle('pipeline-it-bad/prepare-corpus').fetchHistory();
    const attempts = (history.events ?? [])
      .filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes?.attempt);
    assert.ok(
      attempts.every((a) => a === 1),
      `bad input must not be retried, attempts: ${attempts.join(',')}`,
    );
    assert.equal(await isCommitted(openStore(artifacts), 'runs/it-bad/prepare-corpus'), false);
    const progress = await started.query<PipelineProgress>('progress');
    assert.equal(progress.state, 'failed');
  });

  it('rejects an invalid input object with every problem listed', async () => {
    const started = await env.client.workflow.start('pipeline', {
      taskQueue: CPU_TASK_QUEUE,
      workflowId: 'pipeline-it-invalid',
      args: [{ corpus: {}, prepare_corpus: { max_passage_tokens: 'many', bogus: 1 } }],
    });
    const err = (await started.result().catch((e: unknown) => e)) as WorkflowFailedError;
    let text = '';
    for (let c: unknown = err; c instanceof Error; c = c.cause) text += ` ${c.message}`;
    assert.match(text, /corpus\.source/);
    assert.match(text, /prepare_corpus\.max_passage_tokens/);
    assert.match(text, /prepare_corpus\.bogus: unknown key/);
  });
});
