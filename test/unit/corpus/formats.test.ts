import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CorpusTokenizer, prepareCorpusLocal } from '../../../lib/corpus';
import { FIXTURES, makeTmp, readPassages, removeTmp, smallTokenizer, withTmp } from './helpers';

async function lines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).split('\n').filter((l) => l.length > 0);
}

describe('input formats', () => {
  let tokDir: string;
  let tok: CorpusTokenizer;
  before(async () => {
    tokDir = await makeTmp();
    tok = await smallTokenizer(tokDir);
  });
  after(() => removeTmp(tokDir));

  it('reads a BEIR directory: documents, queries and qrels (grade 0 kept)', async () => {
    await withTmp(async (out) => {
      const r = await prepareCorpusLocal(join(FIXTURES, 'beir'), out, {}, { tokenizer: tok.file });
      assert.equal(r.manifest.stats.docs, 6);
      assert.deepEqual(r.queries?.qrels, { test: 4 });
      const passages = await readPassages(join(out, 'shards/00000'));
      assert.deepEqual([...new Set(passages.map((p) => p.doc_id))], ['d1', 'd2', 'd3', 'd4', 'd5', 'd6']);
      assert.equal(passages[0]?.title, 'Wing theory');
      assert.deepEqual(await lines(join(out, 'qrels/test.tsv')), [
        'query-id\tcorpus-id\tscore',
        'q1\td3\t2',
        'q2\td5\t1',
        'q3\td1\t1',
        'q3\td6\t0',
      ]);
      assert.deepEqual(JSON.parse((await lines(join(out, 'queries.jsonl')))[0] as string), {
        id: 'q1',
        text: 'what happens behind a normal shock',
      });
    });
  });

  it('reads gzipped BEIR files to the same passages and qrels as the plain ones', async () => {
    await withTmp(async (out) => {
      await prepareCorpusLocal(join(FIXTURES, 'beir'), join(out, 'plain'), {}, { tokenizer: tok.file });
      const gz = await prepareCorpusLocal(
        join(FIXTURES, 'beir-gz'),
        join(out, 'gz'),
        {},
        { tokenizer: tok.file },
      );
      assert.deepEqual(
        await readPassages(join(out, 'gz/shards/00000')),
        await readPassages(join(out, 'plain/shards/00000')),
      );
      assert.deepEqual(gz.queries?.qrels, { test: 4 });
    });
  });

  it('reads MS MARCO TSV: collection, queries per split, TREC 4-column and 3-column qrels', async () => {
    await withTmp(async (out) => {
      const r = await prepareCorpusLocal(join(FIXTURES, 'msmarco'), out, {}, { tokenizer: tok.file });
      assert.equal(r.manifest.stats.docs, 6);
      assert.equal(r.queries?.queries, 5);
      assert.deepEqual(r.queries?.qrels, { dev: 3, train: 2 });
      assert.deepEqual(await lines(join(out, 'qrels/train.tsv')), [
        'query-id\tcorpus-id\tscore',
        '200\t5\t1',
        '201\t3\t1',
      ]);
      assert.equal((await lines(join(out, 'qrels/dev.tsv')))[1], '100\t2\t1');
    });
  });

  it('reads JSONL pre-training documents (plain and .gz, numeric ids) without queries', async () => {
    await withTmp(async (out) => {
      const r = await prepareCorpusLocal(join(FIXTURES, 'jsonl'), out, {}, { tokenizer: tok.file });
      assert.equal(r.queries, undefined);
      assert.equal(r.manifest.shards.length, 2);
      assert.equal(r.manifest.stats.docs, 5);
      const ids = (await readPassages(join(out, 'shards/00000'))).map((p) => p.doc_id);
      assert.deepEqual([...new Set(ids)], ['a1', '7', 'he1']);
    });
  });

  it('reads SQuAD-style Hebrew QA JSON: paragraphs become documents, questions queries with qrels', async () => {
    await withTmp(async (out) => {
      const r = await prepareCorpusLocal(
        join(FIXTURES, 'squad'),
        out,
        { strip_niqqud: true },
        { tokenizer: tok.file },
      );
      assert.equal(r.manifest.stats.docs, 3);
      assert.deepEqual(r.queries?.qrels, { train: 3, validation: 1 });
      assert.equal(r.queries?.unanswerable, 1);
      assert.deepEqual(await lines(join(out, 'qrels/train.tsv')), [
        'query-id\tcorpus-id\tscore',
        'h1\ttrain-0-0\t1',
        'h2\ttrain-0-0\t1',
        'h3\ttrain-0-1\t1',
      ]);
      const passages = await readPassages(join(out, 'shards/00000'));
      const kotel = passages.find((p) => p.doc_id === 'train-0-1');
      assert.ok(kotel?.text.startsWith('הכתל המערבי הוא שריד'), kotel?.text); // niqqud stripped, sof pasuq kept
      assert.ok(kotel?.text.includes('׃'));
    });
  });
});
