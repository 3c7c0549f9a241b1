import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CorpusPrepConfig, type CorpusTokenizer, prepareShard } from '../../../lib/corpus';
import { contextPosition } from '../../../lib/corpus/pairs';
import {
  jsonlDocs,
  makeTmp,
  memoryInput,
  readPairsFile,
  readPassages,
  removeTmp,
  smallTokenizer,
} from './helpers';

const LONG = Array.from({ length: 12 }, (_, i) => `Sentence number ${i} is about heat flow.`).join(' ');

describe('pre-training pairs', () => {
  let dir: string;
  let tok: CorpusTokenizer;
  before(async () => {
    dir = await makeTmp();
    tok = await smallTokenizer(dir);
  });
  after(() => removeTmp(dir));

  async function pairsOf(config: Partial<CorpusPrepConfig>) {
    const out = join(dir, `p-${Math.random().toString(36).slice(2)}`);
    const docs = [
      { id: 'long', text: LONG },
      { id: 'short', text: 'Heat flow.' },
      { id: 'long2', text: LONG },
    ];
    const input = memoryInput('d.jsonl', jsonlDocs(docs));
    const cfg = { max_passage_tokens: 16, ...config };
    const result = await prepareShard({ index: 0, format: 'jsonl', file: input.name }, input, tok, cfg, out);
    return { result, pairs: readPairsFile(join(out, 'pairs.bin')), passages: await readPassages(out) };
  }

  it("'adjacent' pairs each passage with the next one, the last with the previous one", async () => {
    const { pairs, passages } = await pairsOf({ pair_strategy: 'adjacent' });
    const n = passages.filter((p) => p.doc_id === 'long').length;
    assert.ok(n >= 4);
    const expected = Array.from({ length: n }, (_, k) => [k, k + 1 < n ? k + 1 : k - 1]);
    assert.deepEqual(pairs.slice(0, n), expected);
  });

  it("'random' draws within ±pair_window, never the passage itself, deterministically", async () => {
    const a = await pairsOf({ pair_strategy: 'random', pair_window: 2, seed: 7 });
    const b = await pairsOf({ pair_strategy: 'random', pair_window: 2, seed: 7 });
    assert.deepEqual(a.pairs, b.pairs);
    for (const [anchor, ctx] of a.pairs) {
      const [pa, pc] = [a.passages[anchor], a.passages[ctx]];
      assert.equal(pa?.doc_id, pc?.doc_id);
      assert.notEqual(anchor, ctx);
      assert.ok(Math.abs((pa?.position ?? 0) - (pc?.position ?? 0)) <= 2);
    }
  });

  it("'random' depends only on the seed and the passage id", () => {
    const cfg = { pair_strategy: 'random', pair_window: 3, single_passage_docs: 'skip', seed: 1 } as const;
    const draws = (seed: number) =>
      Array.from({ length: 50 }, (_, k) => contextPosition(k % 10, 10, `d#${k}`, { ...cfg, seed }));
    assert.deepEqual(draws(1), draws(1));
    assert.notDeepEqual(draws(1), draws(2));
    for (const [k, c] of draws(3).entries())
      assert.ok(c !== k % 10 && Math.abs(c - (k % 10)) <= 3 && c >= 0 && c < 10);
  });

  it('skips and counts single-passage documents by default', async () => {
    const { result, pairs, passages } = await pairsOf({});
    const shortIndex = passages.findIndex((p) => p.doc_id === 'short');
    assert.equal(result.stats.single_passage_docs, 1);
    assert.ok(pairs.every(([anchor]) => anchor !== shortIndex));
    assert.equal(result.stats.pairs, passages.length - 1);
  });

  it("pairs a single-passage document with itself under single_passage_docs: 'self'", async () => {
    const { result, pairs, passages } = await pairsOf({ single_passage_docs: 'self' });
    const shortIndex = passages.findIndex((p) => p.doc_id === 'short');
    assert.equal(result.stats.single_passage_docs, 1);
    assert.ok(pairs.some(([a, c]) => a === shortIndex && c === shortIndex));
    assert.equal(result.stats.pairs, passages.length);
  });
});
