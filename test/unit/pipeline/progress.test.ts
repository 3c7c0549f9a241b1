import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeProgress, type PipelineProgress, withStage } from '../../../lib/pipeline/progress';

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

  it('marks a reused stage as a cache hit and a cancelled one as cancelled', () => {
    const p = withStage(
      withStage(base, {
        stage: 'prepare-corpus',
        state: 'completed',
        reused: 'cache',
        artifact: 'file:///b/',
      }),
      { stage: 'pretrain', state: 'cancelled' },
    );
    assert.equal(
      describeProgress({ ...p, state: 'cancelled' }),
      'run r1: cancelled\nprepare-corpus: completed [cache hit: from another run] → file:///b/\npretrain: cancelled',
    );
  });
});
