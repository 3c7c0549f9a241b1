import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_CORPUS_PREP_CONFIG,
  resolveCorpusPrepConfig,
  validateCorpusPrepConfig,
} from '../../../lib/corpus';
import { ConfigError } from '../../../lib/errors';

describe('CorpusPrepConfig', () => {
  it('has the documented defaults', () => {
    assert.equal(DEFAULT_CORPUS_PREP_CONFIG.max_passage_tokens, 128);
    assert.equal(DEFAULT_CORPUS_PREP_CONFIG.pair_strategy, 'adjacent');
    assert.equal(DEFAULT_CORPUS_PREP_CONFIG.single_passage_docs, 'skip');
    assert.equal(DEFAULT_CORPUS_PREP_CONFIG.normalization, 'NFC');
    assert.equal(DEFAULT_CORPUS_PREP_CONFIG.max_line_bytes, 1 << 20);
    assert.equal(DEFAULT_CORPUS_PREP_CONFIG.drop_unknown_qrels, false);
  });

  it('reports every problem, each naming its key', () => {
    const problems = validateCorpusPrepConfig({
      max_passage_tokens: 4,
      pair_strategy: 'nearby',
      strip_niqqud: 'yes',
      vocab_size: 1e6,
      max_passage_length: 128,
    });
    assert.deepEqual(
      problems.map((p) => p.split(':')[0]),
      ['max_passage_tokens', 'pair_strategy', 'strip_niqqud', 'vocab_size', 'max_passage_length'],
    );
    assert.match(problems[4] as string, /unknown key/);
  });

  it('accepts a partial config and fills the defaults', () => {
    assert.deepEqual(validateCorpusPrepConfig({ seed: 3, format: 'squad' }), []);
    const cfg = resolveCorpusPrepConfig({ seed: 3 });
    assert.equal(cfg.seed, 3);
    assert.equal(cfg.pair_window, DEFAULT_CORPUS_PREP_CONFIG.pair_window);
  });

  it('throws ConfigError naming the first bad key when resolving', () => {
    assert.throws(
      () => resolveCorpusPrepConfig({ pair_window: 0 }),
      (err: unknown) => err instanceof ConfigError && err.key === 'pair_window',
    );
  });

  it('rejects a non-object', () => {
    assert.deepEqual(validateCorpusPrepConfig(null), ['(root): must be an object']);
  });
});
