import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectLayout } from '../../../lib/corpus';
import { ConfigError } from '../../../lib/errors';

describe('detectLayout', () => {
  it('detects BEIR with queries and qrels splits (gzipped too)', () => {
    const layout = detectLayout([
      'README.md',
      'corpus.jsonl.gz',
      'queries.jsonl',
      'qrels/test.tsv',
      'qrels/dev.tsv.gz',
    ]);
    assert.deepEqual(layout, {
      format: 'beir',
      corpus: ['corpus.jsonl.gz'],
      queries: [{ file: 'queries.jsonl', split: 'all' }],
      qrels: [
        { file: 'qrels/dev.tsv.gz', split: 'dev' },
        { file: 'qrels/test.tsv', split: 'test' },
      ],
    });
  });

  it('detects MS MARCO TSV with per-split queries and qrels', () => {
    const layout = detectLayout([
      'collection.tsv',
      'queries.dev.tsv',
      'queries.train.tsv',
      'qrels.dev.tsv',
      'qrels.train.tsv',
    ]);
    assert.equal(layout.format, 'msmarco');
    assert.deepEqual(
      layout.queries.map((q) => q.split),
      ['dev', 'train'],
    );
    assert.deepEqual(
      layout.qrels.map((q) => q.split),
      ['dev', 'train'],
    );
  });

  it('detects SQuAD-style JSON and JSONL documents', () => {
    assert.deepEqual(detectLayout(['train.json', 'validation.json.gz']).corpus, [
      'train.json',
      'validation.json.gz',
    ]);
    assert.equal(detectLayout(['train.json']).format, 'squad');
    const jsonl = detectLayout(['part-1.jsonl.gz', 'part-0.jsonl', '.hidden.jsonl']);
    assert.deepEqual([jsonl.format, jsonl.corpus], ['jsonl', ['part-0.jsonl', 'part-1.jsonl.gz']]);
  });

  it('follows an explicit format over detection', () => {
    const layout = detectLayout(['corpus.jsonl', 'other.jsonl'], 'jsonl');
    assert.deepEqual([layout.format, layout.corpus], ['jsonl', ['corpus.jsonl', 'other.jsonl']]);
  });

  it('fails with ConfigError(format) when nothing matches', () => {
    assert.throws(
      () => detectLayout(['notes.txt']),
      (e: unknown) => e instanceof ConfigError && e.key === 'format',
    );
    assert.throws(() => detectLayout(['notes.txt'], 'beir'), /no corpus file for format 'beir'/);
  });
});
