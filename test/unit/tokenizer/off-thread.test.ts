import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { openStore } from '../../../lib/artifacts';
import {
  type CorpusLayout,
  detectLayout,
  type InputFile,
  listLocalInputs,
  readCorpusTexts,
  type TrainProgress,
  trainWordPieceTokenizer,
  trainWordPieceTokenizerOffThread,
} from '../../../lib/corpus';
import { BadInputError } from '../../../lib/errors';
import { jsonlDocs, memoryInput, SHARED_DATA, withTmp, writeSyntheticCorpus } from '../corpus/helpers';

const CRANFIELD = join(SHARED_DATA, 'cranfield');

/** A directory of the shared collection as inputs plus its layout. */
async function source(dir: string): Promise<{ layout: CorpusLayout; files: InputFile[] }> {
  const files = await listLocalInputs(dir);
  return { layout: detectLayout(files.map((f) => f.name)), files };
}

/**
 * The npm trainer is not deterministic (huggingface/tokenizers#1794: continuing-subword ids follow hash-map
 * order, and they break ties between equally frequent merges), so two trainings of the same text, in-thread
 * or not, differ in a few percent of the learned tokens. What must be identical is everything else: the
 * files, the pipeline, the special tokens, the alphabet, the vocabulary size.
 */
async function assertSameTokenizer(a: string, b: string): Promise<void> {
  for (const name of ['tokenizer_config.json', 'special_tokens_map.json'])
    assert.equal(await readFile(join(a, name), 'utf8'), await readFile(join(b, name), 'utf8'), name);
  const [ja, jb] = await Promise.all(
    [a, b].map(async (d) => JSON.parse(await readFile(join(d, 'tokenizer.json'), 'utf8'))),
  );
  const { vocab: va, ...modelA } = ja.model;
  const { vocab: vb, ...modelB } = jb.model;
  assert.deepEqual({ ...ja, model: modelA }, { ...jb, model: modelB });
  const [ta, tb] = [Object.keys(va), Object.keys(vb)];
  assert.equal(ta.length, tb.length);
  const alphabet = (ts: string[]) => ts.filter((t) => [...t].length === 1).sort();
  assert.deepEqual(alphabet(ta), alphabet(tb));
  const inB = new Set(tb);
  const shared = ta.filter((t) => inB.has(t)).length;
  assert.ok(shared / ta.length > 0.9, `only ${shared} of ${ta.length} tokens in common`);
  const [vocabA, vocabB] = await Promise.all([a, b].map((d) => readFile(join(d, 'vocab.txt'), 'utf8')));
  assert.deepEqual(vocabA.split('\n').slice(0, 5), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  assert.deepEqual(vocabB.split('\n').slice(0, 5), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
}

describe('trainWordPieceTokenizerOffThread', () => {
  it('keeps the event loop free while it reads and trains on a large corpus', async () => {
    await withTmp(async (dir) => {
      await mkdir(join(dir, 'corpus'));
      // ~32 MB of synthetic text: under a second of reading, about 10 s of training on 2 idle cores.
      await writeSyntheticCorpus(join(dir, 'corpus', 'corpus.jsonl'), 32e6);
      const { layout, files } = await source(join(dir, 'corpus'));
      const phases: string[] = [];
      let lastTick = Date.now();
      let maxGap = 0;
      let ticks = 0;
      const ticker = setInterval(() => {
        const now = Date.now();
        maxGap = Math.max(maxGap, now - lastTick);
        lastTick = now;
        ticks += 1;
      }, 200);
      const started = Date.now();
      let tok: Awaited<ReturnType<typeof trainWordPieceTokenizerOffThread>>;
      try {
        tok = await trainWordPieceTokenizerOffThread({
          layout,
          files,
          config: { vocab_size: 30000 },
          outDir: join(dir, 'tok'),
          onProgress: (p: TrainProgress) => {
            if (phases.at(-1) !== p.phase) phases.push(p.phase);
          },
        });
      } finally {
        clearInterval(ticker);
      }
      const took = Date.now() - started;
      console.log(`off-thread training: ${took} ms, ${ticks} ticks, largest event-loop gap ${maxGap} ms`);
      assert.ok(maxGap < 1000, `the event loop stalled for ${maxGap} ms`);
      assert.ok(ticks >= took / 200 - 5, `${ticks} ticks in ${took} ms`);
      assert.deepEqual(phases, ['reading', 'training', 'writing']);
      assert.ok(tok.vocabSize > 10000 && tok.vocabSize <= 30000, `vocab size ${tok.vocabSize}`);
      assert.deepEqual((await readdir(join(dir, 'tok'))).sort(), [
        'special_tokens_map.json',
        'tokenizer.json',
        'tokenizer_config.json',
        'vocab.txt',
      ]);
    });
  });

  it('trains what trainWordPieceTokenizer trains on the same corpus', async () => {
    await withTmp(async (dir) => {
      const { layout, files } = await source(CRANFIELD);
      const config = { vocab_size: 8000, lowercase: true };
      const off = await trainWordPieceTokenizerOffThread({ layout, files, config, outDir: join(dir, 'off') });
      const inThread = await trainWordPieceTokenizer(
        readCorpusTexts(layout, files, config),
        config,
        join(dir, 'in'),
      );
      assert.equal(off.vocabSize, inThread.vocabSize);
      await assertSameTokenizer(join(dir, 'off'), join(dir, 'in'));
    });
  });

  it('reads artifact-store files in the training process, and files without a locator on this thread', async () => {
    await withTmp(async (dir) => {
      const body = await readFile(join(SHARED_DATA, 'heq', 'corpus.jsonl'));
      const store = openStore(join(dir, 'store'));
      await store.put('data/corpus.jsonl', body);
      const stored: InputFile = {
        name: 'corpus.jsonl',
        size: body.length,
        locator: { kind: 'store', root: store.rootUri, key: 'data/corpus.jsonl' },
        open: (range) => store.getStream('data/corpus.jsonl', range),
      };
      const layout = detectLayout(['corpus.jsonl']);
      const config = { vocab_size: 4000 };
      await trainWordPieceTokenizerOffThread({
        layout,
        files: [stored],
        config,
        outDir: join(dir, 'store-tok'),
      });
      const memory = memoryInput('corpus.jsonl', body); // no locator
      await trainWordPieceTokenizerOffThread({
        layout,
        files: [memory],
        config,
        outDir: join(dir, 'mem-tok'),
      });
      await assertSameTokenizer(join(dir, 'store-tok'), join(dir, 'mem-tok'));
    });
  });

  it('kills the training process on abort: AbortError within a second, no files left', async () => {
    await withTmp(async (dir) => {
      await mkdir(join(dir, 'corpus'));
      await writeSyntheticCorpus(join(dir, 'corpus', 'corpus.jsonl'), 4e6);
      const { layout, files } = await source(join(dir, 'corpus'));
      const controller = new AbortController();
      let abortedAt = 0;
      const training = trainWordPieceTokenizerOffThread({
        layout,
        files,
        config: {},
        outDir: join(dir, 'tok'),
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase !== 'training' || abortedAt) return;
          abortedAt = Date.now();
          controller.abort();
        },
      });
      await assert.rejects(training, (err: Error) => err.name === 'AbortError');
      assert.ok(abortedAt > 0, 'the training phase was reached');
      assert.ok(Date.now() - abortedAt < 1000, `rejected ${Date.now() - abortedAt} ms after the abort`);
      assert.deepEqual(await readdir(join(dir, 'tok')), []);
    });
  });

  it('rejects at once when the signal is already aborted', async () => {
    const { layout, files } = await source(CRANFIELD);
    await assert.rejects(
      trainWordPieceTokenizerOffThread({
        layout,
        files,
        config: {},
        outDir: '/nonexistent',
        signal: AbortSignal.abort(),
      }),
      { name: 'AbortError' },
    );
  });

  it('reports bad input found in the training process as BadInputError (file:line, truncated gzip)', async () => {
    await withTmp(async (dir) => {
      const docs = jsonlDocs([
        { id: 'a', text: 'one doc' },
        { id: 'b', text: 'two docs' },
      ]);
      await mkdir(join(dir, 'bad'));
      await writeFile(join(dir, 'bad', 'corpus.jsonl'), `${docs}{"id": "c", "text": \n`);
      const bad = await source(join(dir, 'bad'));
      await assert.rejects(
        trainWordPieceTokenizerOffThread({ ...bad, config: {}, outDir: join(dir, 'tok1') }),
        (err: unknown) => err instanceof BadInputError && err.file === 'corpus.jsonl' && err.line === 3,
      );
      await mkdir(join(dir, 'gz'));
      const gz = gzipSync(Buffer.from(docs.repeat(200)));
      await writeFile(join(dir, 'gz', 'corpus.jsonl.gz'), gz.subarray(0, gz.length - 8));
      const truncated = await source(join(dir, 'gz'));
      await assert.rejects(
        trainWordPieceTokenizerOffThread({ ...truncated, config: {}, outDir: join(dir, 'tok2') }),
        (err: unknown) =>
          err instanceof BadInputError &&
          err.retryable === false &&
          /^corpus\.jsonl\.gz: truncated gzip stream \(unexpected end of file\) after line \d+$/.test(
            err.message,
          ),
      );
    });
  });

  it('an empty corpus is a BadInputError naming the source, in the training process and in-thread', async () => {
    await withTmp(async (dir) => {
      await mkdir(join(dir, 'empty'));
      await writeFile(join(dir, 'empty', 'corpus.jsonl'), '\n\n');
      const empty = await source(join(dir, 'empty'));
      const noDocs = (name: string) => (err: unknown) =>
        err instanceof BadInputError && err.file === name && /^no documents/.test(err.reason);
      await assert.rejects(
        trainWordPieceTokenizerOffThread({
          ...empty,
          config: {},
          outDir: join(dir, 'tok'),
          source: '/data/empty',
        }),
        noDocs('/data/empty'),
      );
      await assert.rejects(
        trainWordPieceTokenizerOffThread({ ...empty, config: {}, outDir: join(dir, 'tok') }),
        noDocs('corpus.jsonl'),
      );
      await assert.rejects(
        trainWordPieceTokenizer(
          [],
          { vocab_size: 100, lowercase: true, source: '/data/empty' },
          join(dir, 'tok3'),
        ),
        noDocs('/data/empty'),
      );
      assert.deepEqual(await readdir(join(dir, 'tok')), []);
    });
  });
});
