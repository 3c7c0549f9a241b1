/**
 * The planCorpus activity trains the WordPiece tokenizer off the event loop and keeps heartbeating meanwhile
 * (before, a 56 MB corpus blocked the worker 22 s with no heartbeat): run in @temporalio/testing's
 * MockActivityEnvironment on a synthetic corpus whose training takes >= 10 s, the gaps between heartbeats
 * stay near the heartbeat period. Also: a cancellation during training stops it promptly.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createPrepareCorpusActivities } from '../../../activities/prepare-corpus';
import { DEFAULT_PREPARE_CORPUS_CONFIG } from '../../../lib/pipeline/config';
import type { PlanCorpusResult, PrepareCorpusInput } from '../../../lib/pipeline/types';
import { withTmp, writeSyntheticCorpus } from '../corpus/helpers';

function planInput(dir: string, runId: string): PrepareCorpusInput {
  return {
    runId,
    artifacts: join(dir, 'artifacts'),
    corpus: { source: join(dir, 'corpus'), format: 'auto', name: 'synthetic' },
    tokenizer: {},
    config: { ...DEFAULT_PREPARE_CORPUS_CONFIG },
    force: [],
  };
}

describe('planCorpus heartbeats while the tokenizer trains', { timeout: 180_000 }, () => {
  it('heartbeats at its period through a >= 10 s tokenizer training', async () => {
    await withTmp(async (dir) => {
      await mkdir(join(dir, 'corpus'));
      // ~110 MB of synthetic text: well over 10 s of digesting and WordPiece training on 2 cores.
      await writeSyntheticCorpus(join(dir, 'corpus', 'corpus.jsonl'), 110e6);
      const activities = createPrepareCorpusActivities({
        defaultArtifactRoot: join(dir, 'artifacts'),
        workDir: join(dir, 'work'),
        heartbeatEveryMs: 500,
      });
      const env = new MockActivityEnvironment();
      const beats: number[] = [];
      env.on('heartbeat', () => beats.push(Date.now()));
      const t0 = Date.now();
      const planned = (await env.run(activities.planCorpus, planInput(dir, 'hb'))) as PlanCorpusResult;
      const tookMs = Date.now() - t0;
      assert.equal(planned.kind, 'plan');
      assert.ok(planned.tokenizer.stats.vocab_size && planned.tokenizer.stats.vocab_size > 1000);
      let maxGap = 0;
      for (let i = 1; i < beats.length; i++)
        maxGap = Math.max(maxGap, (beats[i] as number) - (beats[i - 1] as number));
      console.log(`planCorpus: ${tookMs} ms, ${beats.length} heartbeats, largest gap ${maxGap} ms`);
      assert.ok(tookMs >= 10_000, `the training took ${tookMs} ms; the corpus is too small to show anything`);
      assert.ok(maxGap < 2_000, `largest gap between heartbeats: ${maxGap} ms`);
    });
  });

  it('stops the tokenizer training when the activity is cancelled', async () => {
    await withTmp(async (dir) => {
      await mkdir(join(dir, 'corpus'));
      await writeSyntheticCorpus(join(dir, 'corpus', 'corpus.jsonl'), 20e6);
      const activities = createPrepareCorpusActivities({
        defaultArtifactRoot: join(dir, 'artifacts'),
        workDir: join(dir, 'work'),
        heartbeatEveryMs: 200,
      });
      const env = new MockActivityEnvironment();
      let cancelledAt = 0;
      env.once('heartbeat', () =>
        setTimeout(() => {
          cancelledAt = Date.now();
          env.cancel();
        }, 1500),
      );
      const err = await env.run(activities.planCorpus, planInput(dir, 'cancelled')).then(
        () => assert.fail('should have been cancelled'),
        (e: unknown) => e as Error,
      );
      const latency = Date.now() - cancelledAt;
      assert.ok(cancelledAt > 0, `failed before the cancellation: ${err}`);
      assert.ok(
        latency < 3_000,
        `stopped ${latency} ms after the cancellation (${err.name}: ${err.message})`,
      );
    });
  });
});
