import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  type CorpusTokenizer,
  detectLayout,
  finalizeCorpus,
  type InputFile,
  listLocalInputs,
  planShards,
  prepareCorpusLocal,
  prepareQueries,
  prepareShard,
  readCorpusTexts,
} from '../../../lib/corpus';
import { BadInputError } from '../../../lib/errors';
import { jsonlDocs, makeTmp, memoryInput, removeTmp, smallTokenizer } from './helpers';

/** Rejects with a non-retryable BadInputError whose message matches. */
async function assertBadInput(promise: Promise<unknown>, message: string | RegExp): Promise<BadInputError> {
  let caught: BadInputError | undefined;
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BadInputError, `expected BadInputError, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    assert.equal(err.retryable, false);
    caught = err;
    return true;
  });
  return caught as BadInputError;
}

const DOCS = jsonlDocs(
  Array.from({ length: 3000 }, (_, i) => ({ id: `d${i}`, text: `Document ${i} is about heat flow.` })),
);
const GZ = gzipSync(Buffer.from(DOCS));

describe('read errors are bad input naming the file', () => {
  let dir: string;
  let tok: CorpusTokenizer;
  before(async () => {
    dir = await makeTmp();
    tok = await smallTokenizer(dir);
  });
  after(() => removeTmp(dir));

  const out = () => join(dir, `s-${Math.random().toString(36).slice(2)}`);
  const shardOf = (input: InputFile) =>
    prepareShard({ index: 0, format: 'beir', file: input.name }, input, tok, {}, out());
  const texts = async (input: InputFile) => {
    for await (const _ of readCorpusTexts(detectLayout([input.name]), [input], {})) {
      // drain
    }
  };

  it('a truncated .gz: "truncated gzip stream ... after line N" in shards and when reading texts', async () => {
    const input = memoryInput('corpus.jsonl.gz', GZ.subarray(0, Math.floor(GZ.length / 2)));
    const err = await assertBadInput(
      shardOf(input),
      /^corpus\.jsonl\.gz: truncated gzip stream \(unexpected end of file\) after line (\d+)$/,
    );
    const line = Number(/after line (\d+)/.exec(err.message)?.[1]);
    assert.ok(line > 0 && line < 3000, `line ${line}`);
    await assertBadInput(texts(input), err.message);
    const layout = detectLayout(['corpus.jsonl', 'queries.jsonl.gz']);
    const queries = gzipSync(Buffer.from('{"_id": "q1", "text": "heat"}\n'.repeat(1)));
    const truncatedQueries = memoryInput('queries.jsonl.gz', queries.subarray(0, queries.length - 4));
    await assertBadInput(
      prepareQueries(
        layout,
        [memoryInput('corpus.jsonl', DOCS), truncatedQueries],
        { size: 0, has: () => true },
        {},
        out(),
      ),
      'queries.jsonl.gz: truncated gzip stream (unexpected end of file) after line 1',
    );
  });

  it('a corrupt .gz: bad header, bad CRC, bad length, not gzip at all', async () => {
    const header = Buffer.from(GZ);
    header[0] = 0x00;
    await assertBadInput(
      shardOf(memoryInput('corpus.jsonl.gz', header)),
      /^corpus\.jsonl\.gz: corrupt gzip stream \(bad header/,
    );
    const crc = Buffer.from(GZ);
    crc[crc.length - 6] = (crc[crc.length - 6] as number) ^ 0xff;
    await assertBadInput(
      shardOf(memoryInput('corpus.jsonl.gz', crc)),
      // zlib checks the CRC at the end, holding back the output of its last step: "after" the lines before it.
      /^corpus\.jsonl\.gz: corrupt gzip stream \(CRC mismatch: incorrect data check\) after line \d+$/,
    );
    const length = Buffer.from(GZ);
    length[length.length - 2] = (length[length.length - 2] as number) ^ 0xff;
    await assertBadInput(shardOf(memoryInput('corpus.jsonl.gz', length)), /length mismatch/);
    await assertBadInput(
      shardOf(memoryInput('corpus.jsonl.gz', DOCS)),
      /^corpus\.jsonl\.gz: corrupt gzip stream \(bad header[^)]*\)$/,
    );
    const squad = memoryInput('train.json.gz', gzipSync('{"data": []}').subarray(0, 12));
    await assertBadInput(
      prepareShard({ index: 0, format: 'squad', file: squad.name }, squad, tok, {}, out()),
      'train.json.gz: truncated gzip stream (unexpected end of file)',
    );
  });

  it('a planned file that vanished, became a directory or unreadable names the file, not a stack of paths', async () => {
    const src = join(dir, 'vanish');
    await mkdir(src);
    await writeFile(join(src, 'corpus.jsonl'), DOCS);
    const [input] = (await listLocalInputs(src)) as [InputFile];
    const layout = detectLayout([input.name]);
    const shards = await planShards(layout, [input], { shard_bytes: 20_000 });
    await rm(join(src, 'corpus.jsonl'));
    const gone = `corpus.jsonl: no longer exists: was it moved or deleted during the run? (${join(src, 'corpus.jsonl')})`;
    await assertBadInput(prepareShard(shards[1] as (typeof shards)[0], input, tok, {}, out()), gone);
    await assertBadInput(texts(input), gone);
    await assertBadInput(planShards(layout, [input], { shard_bytes: 20_000 }), gone);
    await mkdir(join(src, 'corpus.jsonl'));
    await assertBadInput(shardOf(input), /^corpus\.jsonl: is a directory now, not a file/);
  });

  it('an unreadable file (EACCES)', {
    skip: process.getuid?.() === 0 ? 'root reads everything' : false,
  }, async () => {
    const src = join(dir, 'locked');
    await mkdir(src);
    await writeFile(join(src, 'corpus.jsonl'), DOCS);
    const [input] = (await listLocalInputs(src)) as [InputFile];
    await chmod(join(src, 'corpus.jsonl'), 0);
    await assertBadInput(shardOf(input), /^corpus\.jsonl: cannot be read: permission denied/);
  });

  it('an empty corpus is "no documents" naming the source, not a shard or cache path', async () => {
    const src = join(dir, 'empty-src');
    await mkdir(src);
    await writeFile(join(src, 'corpus.jsonl'), '\n  \n');
    const [input] = (await listLocalInputs(src)) as [InputFile];
    const result = await shardOf(input);
    assert.equal(result.stats.docs, 0);
    const fin = join(dir, 'empty-fin');
    await assertBadInput(
      finalizeCorpus([result], fin, undefined, { source: '/data/empty' }),
      /^\/data\/empty: no documents: the corpus is empty/,
    );
    await assertBadInput(finalizeCorpus([result], fin), /^corpus\.jsonl: no documents/);
    assert.deepEqual(await readdir(fin).catch(() => []), []);
    // Every document skipped for an empty text.
    const blank = memoryInput(
      'corpus.jsonl',
      jsonlDocs([
        { id: 'a', text: ' ' },
        { id: 'b', text: '' },
      ]),
    );
    const skipped = await prepareShard(
      { index: 0, format: 'beir', file: blank.name },
      blank,
      tok,
      { empty_text: 'skip' },
      out(),
    );
    await assertBadInput(
      finalizeCorpus([skipped], fin, undefined, { source: 's3://bucket/datasets/x/' }),
      "s3://bucket/datasets/x/: no documents: all 2 documents were skipped for an empty text (empty_text: 'skip')",
    );
    // The whole local preparation: the tokenizer training finds it first, naming the source dir.
    await assertBadInput(
      prepareCorpusLocal(src, join(dir, 'empty-out'), {}),
      `${src}: no documents: nothing to train a tokenizer on (the corpus is empty, or every document text is empty)`,
    );
  });
});
