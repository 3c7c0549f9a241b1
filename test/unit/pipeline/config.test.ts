import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../lib/errors';
import {
  DEFAULT_PREPARE_CORPUS_CONFIG,
  DEFAULT_STAGE_SUPERVISION,
  forcedStages,
  resolvePipelineInput,
  supervisionFor,
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
    const resolved = resolvePipelineInput({ corpus: { source: '/data/heq/' } }, 'pipeline-abc');
    assert.equal(resolved.run_id, 'abc');
    assert.equal(resolvePipelineInput({ corpus: { source: '/c' } }, 'my/run').run_id, 'my-run');
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
    assert.ok(init.model_config == null, 'no from-scratch model_config next to model_init');
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

describe('one run id, one owner', () => {
  it('refuses a run id started under another workflow id, naming both', () => {
    assert.throws(
      () => resolvePipelineInput({ run_id: 'r1', corpus: { source: '/c' } }, 'pipeline-r2'),
      (err: unknown) =>
        err instanceof ConfigError &&
        /run_id: run r1 belongs to workflow id pipeline-r1/.test(err.message) &&
        /pipeline-r2/.test(err.message),
    );
    assert.equal(
      resolvePipelineInput({ run_id: 'r1', corpus: { source: '/c' } }, 'pipeline-r1').run_id,
      'r1',
    );
  });
});

describe('re-running stages', () => {
  it('resolves force and from_stage to stage names in pipeline order', () => {
    assert.deepEqual(forcedStages(undefined, undefined), []);
    assert.deepEqual(forcedStages(true, undefined), ['tokenizer', 'prepare-corpus', 'pretrain']);
    assert.deepEqual(forcedStages(['pretrain'], undefined), ['pretrain']);
    assert.deepEqual(forcedStages(undefined, 'prepare-corpus'), ['prepare-corpus', 'pretrain']);
    assert.deepEqual(forcedStages(['tokenizer'], 'pretrain'), ['tokenizer', 'pretrain']);
    const resolved = resolvePipelineInput({ corpus: { source: '/c' }, from_stage: 'pretrain' }, 'w');
    assert.deepEqual(resolved.force, ['pretrain']);
  });

  it('rejects unknown stage names', () => {
    const problems = validatePipelineInput({
      corpus: { source: '/c' },
      force: ['bogus'],
      from_stage: 'nope',
    });
    assert.ok(
      problems.some((p) => p.startsWith('force: unknown stage "bogus"')),
      problems.join('; '),
    );
    assert.ok(
      problems.some((p) => p.startsWith('from_stage: unknown stage "nope"')),
      problems.join('; '),
    );
  });
});

describe('stage supervision', () => {
  it('has a 60 s heartbeat timeout and a 15 min stall timeout by default, overridable per stage', () => {
    const resolved = resolvePipelineInput(
      {
        corpus: { source: '/c' },
        training: { max_attempts: 3, stages: { pretrain: { stall_timeout_s: 120 } } },
      },
      'w',
    );
    assert.equal(DEFAULT_STAGE_SUPERVISION.heartbeat_timeout_s, 60);
    assert.deepEqual(supervisionFor(resolved.training, 'pretrain'), {
      ...DEFAULT_STAGE_SUPERVISION,
      max_attempts: 3,
      stall_timeout_s: 120,
    });
    assert.equal(supervisionFor(resolved.training, 'prepare-corpus').stall_timeout_s, 900);
    const problems = validatePipelineInput({
      corpus: { source: '/c' },
      training: { stages: { pretrain: { stall_timeout_s: 0 }, bogus: {} } },
    });
    assert.ok(
      problems.some((p) => p.startsWith('training.stages.pretrain.stall_timeout_s:')),
      problems.join('; '),
    );
    assert.ok(
      problems.some((p) => p.startsWith('training.stages.bogus: unknown stage')),
      problems.join('; '),
    );
  });

  it('validates pretrain keys against the trainer schema, every problem at once', () => {
    const problems = validatePipelineInput({
      corpus: { source: '/c' },
      pretrain: { learning_rate: 0.1, max_steps: 'sixty' },
    });
    assert.ok(
      problems.some((p) => p.startsWith('pretrain.learning_rate')),
      problems.join('; '),
    );
    assert.ok(
      problems.some((p) => p.startsWith('pretrain.max_steps')),
      problems.join('; '),
    );
  });
});
