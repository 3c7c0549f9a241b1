import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../lib/errors';
import {
  DEFAULT_PREPARE_CORPUS_CONFIG,
  resolvePipelineInput,
  validatePipelineInput,
} from '../../../lib/pipeline/config';

describe('validatePipelineInput', () => {
  it('accepts the minimal input', () => {
    assert.deepEqual(validatePipelineInput({ corpus: { source: '/data/cranfield' } }), []);
  });

  it('reports every problem at once, each naming its key', () => {
    const problems = validatePipelineInput({
      corpus: { format: 'csv', extra: 1 },
      run_id: '../evil',
      prepare_corpus: { max_passage_tokens: 0, max_parallel_shards: 0, nope: true },
      surprise: 1,
    });
    const keys = problems.map((p) => p.split(':')[0]);
    for (const key of [
      'surprise',
      'run_id',
      'corpus.extra',
      'corpus.source',
      'corpus.format',
      'prepare_corpus.max_parallel_shards',
      'prepare_corpus.max_passage_tokens',
      'prepare_corpus.nope',
    ])
      assert.ok(keys.includes(key), `${key} not reported in ${JSON.stringify(problems)}`);
  });

  it('rejects a non-object input', () => {
    assert.deepEqual(validatePipelineInput([]), ['(input): must be a JSON object']);
  });
});

describe('resolvePipelineInput', () => {
  it('fills every default and derives run id and corpus name', () => {
    const resolved = resolvePipelineInput({ corpus: { source: '/data/heq/' } }, 'pipeline/abc');
    assert.equal(resolved.run_id, 'pipeline-abc');
    assert.equal(resolved.corpus.name, 'heq');
    assert.equal(resolved.corpus.format, 'auto');
    assert.deepEqual(resolved.prepare_corpus, { ...DEFAULT_PREPARE_CORPUS_CONFIG });
  });

  it('passes an explicit format through to the corpus config', () => {
    const resolved = resolvePipelineInput({ corpus: { source: 's3://b/datasets/x', format: 'squad' } }, 'w');
    assert.equal(resolved.prepare_corpus.format, 'squad');
  });

  it('throws a ConfigError listing all problems', () => {
    assert.throws(
      () => resolvePipelineInput({ corpus: {}, prepare_corpus: { seed: -1 } }, 'w'),
      (err: unknown) =>
        err instanceof ConfigError &&
        /corpus\.source/.test(err.message) &&
        /prepare_corpus\.seed/.test(err.message),
    );
  });
});

describe('pre-training defaults', () => {
  it('fills a from-scratch model unless the user names model_init', () => {
    const scratch = resolvePipelineInput({ corpus: { source: '/c' } }, 'w').pretrain;
    assert.ok(scratch && typeof scratch.model_config === 'object');
    const init = resolvePipelineInput(
      { corpus: { source: '/c' }, pretrain: { model_init: '/models/dictabert' } },
      'w',
    ).pretrain;
    assert.ok(init);
    assert.equal(init.model_init, '/models/dictabert');
    assert.equal(init.model_config, undefined);
    assert.equal(init.max_steps, scratch.max_steps);
  });

  it('skips pre-training with pretrain: null and validates training supervision', () => {
    assert.equal(resolvePipelineInput({ corpus: { source: '/c' }, pretrain: null }, 'w').pretrain, null);
    const problems = validatePipelineInput({
      corpus: { source: '/c' },
      pretrain: 3,
      training: { heartbeat_timeout_s: 0, x: 1 },
    });
    assert.ok(problems.some((p) => p.startsWith('pretrain:')));
    assert.ok(problems.some((p) => p.startsWith('training.heartbeat_timeout_s:')));
    assert.ok(problems.some((p) => p.startsWith('training.x: unknown key')));
  });
});
