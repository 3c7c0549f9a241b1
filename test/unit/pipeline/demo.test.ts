import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeDemoCollection } from '../../../lib/demo/generate';

describe('demo collection', () => {
  it('is byte-identical for the same seed and in BEIR layout', async () => {
    const a = await mkdtemp(join(tmpdir(), 'demo-a-'));
    const b = await mkdtemp(join(tmpdir(), 'demo-b-'));
    const counts = await writeDemoCollection(a, { documents: 20, queriesPerDocument: 2, seed: 5 });
    await writeDemoCollection(b, { documents: 20, queriesPerDocument: 2, seed: 5 });
    assert.deepEqual(counts, { documents: 20, queries: 40, qrels: 40 });
    for (const f of ['corpus.jsonl', 'queries.jsonl', 'qrels/test.tsv'])
      assert.equal(await readFile(join(a, f), 'utf8'), await readFile(join(b, f), 'utf8'));
    const docs = (await readFile(join(a, 'corpus.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(docs.length, 20);
    assert.ok(
      docs.every((d) => typeof d._id === 'string' && d.text.split('\n').length >= 3),
      'multi-paragraph documents',
    );
    const qrels = (await readFile(join(a, 'qrels/test.tsv'), 'utf8')).trim().split('\n');
    assert.equal(qrels[0], 'query-id\tcorpus-id\tscore');
  });

  it('puts each query key fact in its relevant document', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'demo-c-'));
    await writeDemoCollection(dir, { documents: 8, queriesPerDocument: 1, seed: 9 });
    const docs = new Map(
      (await readFile(join(dir, 'corpus.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .map((d) => [d._id, d.text as string]),
    );
    const queries = (await readFile(join(dir, 'queries.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    for (const q of queries) {
      const docId = (q._id as string).replace(/^q-/, '').replace(/-\d+$/, '');
      const fact = /In (\d{4}), (\w+) recorded the ([\w -]+?) at ([\w ]+?) for the first time/.exec(
        docs.get(docId) ?? '',
      );
      assert.ok(fact, `${docId} has no key-fact sentence`);
      const [, year, person, noun, place] = fact;
      const text = q.text as string;
      assert.ok(text.includes(noun as string) || text.includes(`${person} ${noun}`), `${q._id}: ${text}`);
      assert.ok(text.includes(place as string), `${q._id}: ${text}`);
      assert.ok(text.includes(year as string) || text.includes(person as string), `${q._id}: ${text}`);
    }
  });
});
