import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type CorpusTokenizer,
  detectLayout,
  finalizeCorpus,
  type InputFile,
  listLocalInputs,
  loadDocIdSet,
  planShards,
  prepareQueries,
  prepareShard,
  readCorpusTexts,
  type ShardResult,
} from '../../../lib/corpus';
import { makeTmp, removeTmp, SHARED_DATA, smallTokenizer, writeSyntheticCorpus } from './helpers';

/** Cranfield has one document without a text. */
const CFG = { empty_text: 'skip' as const };

const isAbort = (err: unknown) => err instanceof Error && err.name === 'AbortError';

describe('cancellation', () => {
  let dir: string;
  let tok: CorpusTokenizer;
  let big: InputFile;
  before(async () => {
    dir = await makeTmp();
    tok = await smallTokenizer(dir);
    await mkdir(join(dir, 'big'));
    // Made-up words against a 400-token vocabulary: many word pieces, several seconds for one shard.
    await writeSyntheticCorpus(join(dir, 'big', 'corpus.jsonl'), 12e6);
    [big] = (await listLocalInputs(join(dir, 'big'))) as [InputFile];
  });
  after(() => removeTmp(dir));

  it('prepareShard stops within a second of an abort mid-shard, leaving no files', async () => {
    const out = join(dir, 'aborted-shard');
    const controller = new AbortController();
    let abortedAt = 0;
    let docsAtAbort = 0;
    const shard = { index: 0, format: 'beir' as const, file: big.name };
    const running = prepareShard(
      shard,
      big,
      tok,
      {},
      out,
      (p) => {
        if (abortedAt || p.docs === 0) return;
        docsAtAbort = p.docs;
        abortedAt = Date.now();
        controller.abort(new Error('activity cancelled'));
      },
      controller.signal,
    );
    await assert.rejects(running, (err: Error) => {
      assert.ok(isAbort(err), `expected an AbortError, got ${err}`);
      assert.match(err.message, /shard 0 \(corpus\.jsonl\) aborted: activity cancelled/);
      return true;
    });
    const late = Date.now() - abortedAt;
    assert.ok(abortedAt > 0 && docsAtAbort < 20000, `aborted after ${docsAtAbort} documents`);
    assert.ok(late < 1000, `rejected ${late} ms after the abort`);
    assert.deepEqual(await readdir(out), []);
  });

  it('prepareShard and planShards reject at once with an already aborted signal', async () => {
    const shard = { index: 0, format: 'beir' as const, file: big.name };
    await assert.rejects(
      prepareShard(shard, big, tok, {}, join(dir, 'never'), undefined, AbortSignal.abort()),
      isAbort,
    );
    const layout = detectLayout([big.name]);
    await assert.rejects(
      planShards(layout, [big], { shard_bytes: 1e6, signal: AbortSignal.abort() }),
      isAbort,
    );
  });

  it('readCorpusTexts stops between batches', async () => {
    const controller = new AbortController();
    let n = 0;
    await assert.rejects(async () => {
      for await (const _ of readCorpusTexts(detectLayout([big.name]), [big], {}, controller.signal)) {
        n += 1;
        if (n === 1000) controller.abort();
      }
    }, isAbort);
    assert.ok(n < 1000 + 256, `${n} texts read`);
  });

  it('finalizeCorpus and prepareQueries abort without writing their outputs', async () => {
    const inputs = await listLocalInputs(join(SHARED_DATA, 'cranfield'));
    const layout = detectLayout(inputs.map((f) => f.name));
    const results: ShardResult[] = [];
    for (const shard of await planShards(layout, inputs, { shard_bytes: 400_000 })) {
      const input = inputs.find((f) => f.name === shard.file) as InputFile;
      results.push(await prepareShard(shard, input, tok, CFG, join(dir, 'cran', 'shards', `${shard.index}`)));
    }
    const fin = join(dir, 'cran');
    await assert.rejects(finalizeCorpus(results, fin, AbortSignal.abort()), isAbort);
    assert.deepEqual((await readdir(fin)).sort(), ['shards']);
    await finalizeCorpus(results, fin);
    const known = await loadDocIdSet(fin);
    const controller = new AbortController();
    const queries = prepareQueries(layout, inputs, known, CFG, join(dir, 'q'), controller.signal);
    controller.abort();
    await assert.rejects(queries, isAbort);
    assert.deepEqual(await readdir(join(dir, 'q', 'qrels')), []);
    assert.deepEqual(await readdir(join(dir, 'q')), ['qrels']);
    const done = await prepareQueries(
      layout,
      inputs,
      known,
      CFG,
      join(dir, 'q'),
      new AbortController().signal,
    );
    assert.equal(done.queries, 225);
    assert.deepEqual((await readdir(join(dir, 'q'))).sort(), ['qrels', 'queries.jsonl']);
  });
});
