/**
 * The training process of trainWordPieceTokenizerOffThread (forked from train-off-thread.ts; not a module
 * to import). It gets one TrainJob over IPC, reads the corpus files from their locators into the training
 * text (unless the parent already wrote it), trains, writes the tokenizer files, reports `done` or `error`
 * and exits. The parent kills it on abort; if the parent dies, it exits once it notices (between chunks
 * while reading; after the native training call returns).
 */
import type { ArtifactStore } from '../artifacts';
import { noDocumentsError, trainFromTextFile, writeTrainingText } from '../tokenizer/train';
import { inputError, localFileAt } from './input';
import { corpusTexts } from './texts';
import type { SerializedError, TrainJob, TrainMessage } from './train-off-thread';
import type { ByteRange, InputFile, InputLocator } from './types';

const PROGRESS_EVERY_MS = 500;

function send(message: TrainMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) resolve();
    else process.send(message, undefined, {}, () => resolve());
  });
}

/** Stores opened for `store` locators, one per root, closed at the end. */
const stores = new Map<string, ArtifactStore>();

function storeFor(root: string): ArtifactStore {
  let store = stores.get(root);
  if (!store) {
    // Loaded only when needed: the S3 client is heavy.
    const { openStore } = require('../artifacts') as typeof import('../artifacts');
    store = openStore(root);
    stores.set(root, store);
  }
  return store;
}

function inputFile(d: { name: string; size: number; locator: InputLocator }): InputFile {
  const { locator } = d;
  if (locator.kind === 'local') return localFileAt(locator.path, d.name, d.size);
  return {
    name: d.name,
    size: d.size,
    locator,
    open: async (range?: ByteRange) => {
      try {
        return await storeFor(locator.root).getStream(locator.key, range);
      } catch (err) {
        throw inputError({ name: d.name, locator }, err);
      }
    },
  };
}

async function run(job: TrainJob): Promise<number> {
  let docs = 0;
  let bytes = 0;
  if (job.corpus) {
    const { layout, config, files } = job.corpus;
    const read = { bytes: 0 };
    let last = Date.now();
    void send({ type: 'progress', phase: 'reading', docs, bytes_read: 0 });
    const texts = corpusTexts(layout, files.map(inputFile), config, undefined, read);
    const n = await writeTrainingText(texts, job.textFile, () => {
      docs += 1;
      bytes = read.bytes;
      if (Date.now() - last < PROGRESS_EVERY_MS) return;
      last = Date.now();
      void send({ type: 'progress', phase: 'reading', docs, bytes_read: bytes });
    });
    if (n === 0) throw noDocumentsError(job.opts.source);
  }
  // Each phase message is on the wire before the (blocking) native training starts.
  await trainFromTextFile(job.textFile, job.opts, job.outDir, (phase) =>
    send({ type: 'progress', phase, docs, bytes_read: bytes }),
  );
  return docs;
}

function serialize(err: unknown): SerializedError {
  // Required lazily: train-off-thread is the parent's module; only its error helper is needed here.
  const { serializeError } = require('./train-off-thread') as typeof import('./train-off-thread');
  return serializeError(err);
}

async function closeStores(): Promise<void> {
  await Promise.all([...stores.values()].map((s) => s.close().catch(() => undefined)));
}

if (require.main === module) {
  process.on('disconnect', () => process.exit(1)); // the parent is gone: nobody wants the result
  process.once('message', (job: TrainJob) => {
    run(job)
      .then(
        (docs) => send({ type: 'done', docs }),
        (err: unknown) => send({ type: 'error', error: serialize(err) }),
      )
      .then(closeStores)
      .finally(() => process.exit(0));
  });
}
