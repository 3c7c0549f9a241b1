import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeProgress, type PipelineProgress, withStage } from '../../../lib/pipeline/progress';
import { mapBounded } from '../../../workflows/shared';

describe('progress model', () => {
  const base: PipelineProgress = {
    runId: 'r1',
    state: 'running',
    stages: [{ stage: 'prepare-corpus', state: 'pending' }],
  };

  it('merges an update into an existing stage and appends a new one', () => {
    const p1 = withStage(base, { stage: 'prepare-corpus', state: 'running', done: 1, total: 4 });
    assert.deepEqual(p1.stages, [{ stage: 'prepare-corpus', state: 'running', done: 1, total: 4 }]);
    const p2 = withStage(p1, { stage: 'pretrain', state: 'pending' });
    assert.equal(p2.stages.length, 2);
    assert.equal(base.stages[0]?.state, 'pending', 'the input is not mutated');
  });

  it('describes each stage on one line with counts and artifact', () => {
    const p = withStage(base, {
      stage: 'prepare-corpus',
      state: 'completed',
      counts: { passages: 12, loss: 0.5 },
      artifact: 'file:///a/',
    });
    assert.equal(
      describeProgress(p),
      'run r1: running\nprepare-corpus: completed (passages=12, loss=0.5000) → file:///a/',
    );
  });
});

describe('mapBounded', () => {
  it('keeps order and never exceeds the limit', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapBounded([5, 1, 4, 2, 3], 2, async (x) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, x));
      inFlight--;
      return x * 10;
    });
    assert.deepEqual(out, [50, 10, 40, 20, 30]);
    assert.equal(peak, 2);
  });

  it('handles an empty list', async () => {
    assert.deepEqual(await mapBounded([], 3, async (x: number) => x), []);
  });
});
