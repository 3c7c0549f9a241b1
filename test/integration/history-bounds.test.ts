/**
 * History stays bounded at scale: a corpus planned into 2,000 shards (one JSONL file each) is prepared on the
 * real dev server with the real activities, and the prepare-corpus workflow's history must stay under 2 MB —
 * each shard activity gets a reference to the stored plan and its own shard spec, never the whole plan.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { temporal } from '@temporalio/proto';
import { historySize, type PipelineEnv, runPipeline, startPipelineEnv } from '../support/pipeline-env';

const SHARDS = Number(process.env.COTMAE_TEST_SHARDS ?? 2000);

describe('history bounds (real Temporal)', { timeout: 900_000 }, () => {
  let env: PipelineEnv;
  let corpus: string;
  let artifacts: string;

  before(async () => {
    env = await startPipelineEnv({ gpuWorker: false, cpuActivities: 8 });
    const scratch = await mkdtemp(join(tmpdir(), 'cotmae-history-'));
    corpus = join(scratch, 'many-files');
    artifacts = join(scratch, 'artifacts');
    await mkdir(corpus);
    const words = ['retrieval', 'passage', 'context', 'encoder', 'decoder', 'sparse', 'dense', 'query'];
    for (let i = 0; i < SHARDS; i++) {
      const text = Array.from({ length: 12 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ');
      await writeFile(
        join(corpus, `part-${String(i).padStart(5, '0')}.jsonl`),
        `${JSON.stringify({ _id: `d${i}`, text: `${text}. ${text}.` })}\n`,
      );
    }
  });
  after(async () => env?.stop());

  it(`a plan of ${SHARDS} shards keeps the prepare-corpus history under 2 MB`, async () => {
    const t0 = Date.now();
    const { result } = await runPipeline(env, {
      run_id: 'many-shards',
      artifacts,
      corpus: { source: corpus, format: 'jsonl' },
      prepare_corpus: { vocab_size: 200, max_parallel_shards: 8 },
      pretrain: null,
    });
    assert.equal(result.corpus.stats.shards, SHARDS);
    assert.equal(result.corpus.stats.documents, SHARDS);
    const child = await historySize(env.client, 'pipeline-many-shards/prepare-corpus');
    const parent = await historySize(env.client, 'pipeline-many-shards');
    console.log(
      `${SHARDS} shards: prepare-corpus history ${child.events} events, ${(child.bytes / 1e6).toFixed(2)} MB; pipeline ${parent.events} events, ${parent.bytes} B; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
    // Where the bytes go, by event type (printed so a regression shows what grew).
    const byType = new Map<string, { n: number; bytes: number }>();
    const events =
      (await env.client.workflow.getHandle('pipeline-many-shards/prepare-corpus').fetchHistory()).events ??
      [];
    for (const e of events) {
      const type = String(e.eventType);
      const bytes = temporal.api.history.v1.HistoryEvent.encode(e).finish().length;
      const t = byType.get(type) ?? { n: 0, bytes: 0 };
      byType.set(type, { n: t.n + 1, bytes: t.bytes + bytes });
    }
    for (const [type, t] of [...byType].sort((a, b) => b[1].bytes - a[1].bytes))
      console.log(`  ${type}: ${t.n} events, ${t.bytes} B (${Math.round(t.bytes / t.n)} B each)`);
    assert.ok(child.bytes < 2_000_000, `prepare-corpus history is ${child.bytes} bytes`);
    assert.ok(parent.events < 200, `pipeline history has ${parent.events} events`);
  });
});
