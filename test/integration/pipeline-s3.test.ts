/**
 * The pipeline on the S3 backend: a real S3-compatible server (moto), a BEIR collection imported with
 * `data import` (so shards stream their byte ranges with ranged GETs), every artifact verified in the bucket.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore, readManifest, verifyArtifact } from '../../lib/artifacts';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { importDataset } from '../../lib/datasets/import';
import type { PipelineProgress } from '../../lib/pipeline/progress';
import type { PipelineResult } from '../../lib/pipeline/types';
import { repoRoot } from '../../lib/settings';
import { type PipelineEnv, startPipelineEnv } from '../support/pipeline-env';
import { startTestS3, type TestS3 } from '../support/s3-env';

const CRANFIELD = join(repoRoot(), '..', 'shared', 'data', 'cranfield');
const BUCKET = 'cotmae-it';

describe('pipeline workflow on S3 (real Temporal, real S3-compatible server)', { timeout: 600_000 }, () => {
  let s3: TestS3;
  let env: PipelineEnv;

  before(async () => {
    s3 = await startTestS3(BUCKET);
    env = await startPipelineEnv();
  });

  after(async () => {
    await env?.stop();
    await s3?.stop();
  });

  it('imports cranfield, prepares it from the bucket in several shards, and publishes verified artifacts', async () => {
    const root = `s3://${BUCKET}/cotmae`;
    const dataset = await importDataset(CRANFIELD, root, 'cranfield');
    assert.equal(dataset.format, 'beir');
    assert.match(dataset.uri, /^s3:\/\/cotmae-it\/cotmae\/datasets\/cranfield\/$/);

    const handle = await env.client.workflow.start('pipeline', {
      taskQueue: CPU_TASK_QUEUE,
      workflowId: 'pipeline-it-s3',
      args: [
        {
          run_id: 'it-s3',
          artifacts: root,
          corpus: { source: dataset.uri, name: 'cranfield' },
          prepare_corpus: {
            shard_bytes: 400_000,
            vocab_size: 5000,
            max_parallel_shards: 3,
            empty_text: 'skip',
          },
          pretrain: null,
        },
      ],
    });
    const result = (await handle.result()) as PipelineResult;
    const stats = result.corpus.stats;
    assert.equal(stats.documents, 1400);
    assert.equal(stats.queries, 225);
    assert.equal(stats.qrels, 1837);
    assert.ok((stats.shards ?? 0) >= 4, `expected >= 4 shards, got ${stats.shards}`);
    assert.match(result.corpus.uri, /^s3:\/\/cotmae-it\/cotmae\/runs\/it-s3\/prepare-corpus\/$/);

    const store = openStore(root);
    try {
      const verified = await verifyArtifact(store, 'runs/it-s3/prepare-corpus');
      assert.equal(verified.manifestSha256, result.corpus.manifestSha256);
      const inputs = Object.fromEntries(verified.manifest.inputs.map((i) => [i.name, i]));
      const datasetManifest = await readManifest(store, 'datasets/cranfield');
      assert.equal(
        inputs.corpus?.manifestSha256,
        datasetManifest.contentDigest,
        'the corpus input is identified by the dataset content',
      );
      const tokenizer = await readManifest(store, 'runs/it-s3/tokenizer');
      assert.equal(inputs.tokenizer?.manifestSha256, tokenizer.manifestSha256);
      assert.equal(verified.manifest.stats.passages, stats.passages);
    } finally {
      await store.close();
    }
    const progress = await env.client.workflow
      .getHandle('pipeline-it-s3/prepare-corpus')
      .query<PipelineProgress>('progress');
    assert.equal(progress.stages.find((s) => s.stage === 'prepare-corpus')?.done, stats.shards);
  });
});
