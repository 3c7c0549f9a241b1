import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  type CorpusTokenizer,
  detectLayout,
  finalizeCorpus,
  type InputFile,
  loadDocIdSet,
  planShards,
  prepareShard,
  type ShardResult,
} from '../../../lib/corpus';
import { BadInputError } from '../../../lib/errors';
import {
  jsonlDocs,
  makeTmp,
  memoryInput,
  readPairsFile,
  readPassages,
  readTokenFile,
  removeTmp,
  smallTokenizer,
} from './helpers';

const TOPICS = ['heat flow', 'shock waves', 'the wing', 'panel flutter', 'ירושלים היא עיר'];

function corpusDocs(n: number): { id: string; text: string }[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `doc${i}`,
    text: Array.from(
      { length: 1 + (i % 7) },
      (_, s) => `Sentence ${s} of ${i} is about ${TOPICS[(i + s) % 5]}.`,
    ).join(' '),
  }));
}

describe('sharding', () => {
  let dir: string;
  let tok: CorpusTokenizer;
  before(async () => {
    dir = await makeTmp();
    tok = await smallTokenizer(dir);
  });
  after(() => removeTmp(dir));

  async function runAll(input: InputFile, shardBytes: number, tag: string): Promise<ShardResult[]> {
    const layout = detectLayout([input.name]);
    const shards = await planShards(layout, [input], { shard_bytes: shardBytes });
    const results: ShardResult[] = [];
    for (const shard of shards) {
      results.push(
        await prepareShard(shard, input, tok, { max_passage_tokens: 24 }, join(dir, tag, `${shard.index}`)),
      );
    }
    return results;
  }

  it('plans byte ranges that start at line starts and cover the file', async () => {
    const content = Buffer.from(jsonlDocs(corpusDocs(100)));
    const input = memoryInput('docs.jsonl', content);
    const shards = await planShards(detectLayout([input.name]), [input], { shard_bytes: 1000 });
    assert.ok(shards.length > 5);
    assert.equal(shards[0]?.range?.start, 0);
    assert.equal(shards.at(-1)?.range?.end, content.length);
    shards.forEach((s, i) => {
      assert.equal(s.index, i);
      if (i > 0) assert.equal(content[(s.range?.start ?? 0) - 1], 0x0a, 'starts after a newline');
      if (i > 0) assert.equal(s.range?.start, shards[i - 1]?.range?.end);
    });
  });

  it('keeps .gz and SQuAD files whole', async () => {
    const gz = memoryInput('docs.jsonl.gz', gzipSync(jsonlDocs(corpusDocs(100))));
    const shards = await planShards(detectLayout([gz.name]), [gz], { shard_bytes: 100 });
    assert.deepEqual(shards, [{ index: 0, format: 'jsonl', file: 'docs.jsonl.gz' }]);
    const squad = memoryInput('train.json', '{"data": []}'.padEnd(5000));
    assert.equal((await planShards(detectLayout([squad.name]), [squad], { shard_bytes: 100 })).length, 1);
  });

  it('gives the same passages, tokens, pairs and stats with many shards as with one', async () => {
    const input = memoryInput('docs.jsonl', jsonlDocs(corpusDocs(150)));
    const one = await runAll(input, 1 << 30, 'one');
    const many = await runAll(input, 2000, 'many');
    assert.equal(one.length, 1);
    assert.ok(many.length > 5);
    const collect = async (results: ShardResult[]) => {
      const passages = [];
      const tokens = [];
      const pairs = [];
      for (const r of results) {
        const base = passages.length;
        passages.push(...(await readPassages(r.out_dir)));
        tokens.push(...readTokenFile(join(r.out_dir, r.files.tokens)));
        pairs.push(...readPairsFile(join(r.out_dir, r.files.pairs)).map(([a, c]) => [a + base, c + base]));
      }
      return { passages, tokens, pairs };
    };
    assert.deepEqual(await collect(many), await collect(one));
    const [m1, m2] = [
      await finalizeCorpus(one, join(dir, 'fin-one')),
      await finalizeCorpus(many, join(dir, 'fin-many')),
    ];
    assert.deepEqual(m2.stats, m1.stats);
    let line = 1;
    for (const [i, s] of m2.shards.entries()) {
      assert.equal(s.first_line, line);
      line += many[i]?.line_count ?? 0;
    }
    assert.equal(line, 151);
  });

  it('names the true line of the file for bad input in a later shard', async () => {
    const lines = jsonlDocs(corpusDocs(120)).split('\n');
    lines[99] = '{"id": "broken", "text": ';
    const input = memoryInput('docs.jsonl', lines.join('\n'));
    await assert.rejects(runAll(input, 2000, 'bad'), (err: unknown) => {
      assert.ok(err instanceof BadInputError);
      assert.equal(err.file, 'docs.jsonl');
      assert.equal(err.line, 100);
      assert.match(err.message, /^docs\.jsonl:100: malformed JSON/);
      return true;
    });
  });

  it('finds duplicate doc ids across shards in finalize, naming both lines', async () => {
    const docs = corpusDocs(120);
    docs[110] = { id: 'doc7', text: 'Copied id.' };
    const results = await runAll(memoryInput('docs.jsonl', jsonlDocs(docs)), 2000, 'dup');
    assert.ok(results.length > 2);
    await assert.rejects(finalizeCorpus(results, join(dir, 'fin-dup')), (err: unknown) => {
      assert.ok(err instanceof BadInputError);
      assert.equal(err.message, 'docs.jsonl:111: duplicate doc id "doc7" (first at docs.jsonl:8)');
      return true;
    });
  });

  it('finds duplicate doc ids within one shard too', async () => {
    const docs = corpusDocs(5);
    docs[3] = { id: 'doc1', text: 'Copied id.' };
    const results = await runAll(memoryInput('docs.jsonl', jsonlDocs(docs)), 1 << 30, 'dup1');
    await assert.rejects(
      finalizeCorpus(results, join(dir, 'fin-dup1')),
      /docs\.jsonl:4: duplicate doc id "doc1"/,
    );
  });

  it('writes a doc-id index that answers membership after finalize', async () => {
    const results = await runAll(memoryInput('docs.jsonl', jsonlDocs(corpusDocs(50))), 2000, 'ids');
    const fin = join(dir, 'fin-ids');
    await finalizeCorpus(results, fin);
    const ids = await loadDocIdSet(fin);
    assert.equal(ids.size, 50);
    assert.ok(ids.has('doc0') && ids.has('doc49'));
    assert.ok(!ids.has('doc50') && !ids.has(''));
  });

  it('reports progress for heartbeats, ending with the final counts', async () => {
    const input = memoryInput('docs.jsonl', jsonlDocs(corpusDocs(30)));
    const seen: number[] = [];
    const shard = { index: 3, format: 'jsonl' as const, file: input.name };
    const r = await prepareShard(shard, input, tok, {}, join(dir, 'progress'), (p) => seen.push(p.docs));
    assert.equal(seen.at(-1), 30);
    assert.equal(r.stats.docs, 30);
  });
});
