/**
 * Tokenizer training off the event loop. The npm trainer's train() is one synchronous native call (about
 * 20 s for 50 MB of text, minutes for GBs), and reading plus normalizing the corpus is CPU work too: both
 * run in a child process (./train-worker), so the caller's event loop stays free to heartbeat, and an abort
 * kills the child at once (a worker thread could not be stopped inside the native call). A crash or OOM of
 * the trainer takes down the child only.
 *
 * The child opens the corpus files itself from their `locator` (a local path, or an artifact-store object
 * read with the environment's credentials). Files without a locator are read on this thread (async, a
 * chunk at a time) into the training text, and only the training runs in the child.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BadInputError, ConfigError } from '../errors';
import { type CorpusTokenizer, loadTokenizer } from '../tokenizer/load';
import {
  checkTrainOptions,
  noDocumentsError,
  type TrainTokenizerOptions,
  writeTrainingText,
} from '../tokenizer/train';
import { AbortError, abortError, checkAborted } from './abort';
import { resolveCorpusPrepConfig } from './config';
import { fileByName } from './input';
import { corpusTexts } from './texts';
import type { CorpusLayout, CorpusPrepConfig, InputFile, InputLocator } from './types';

export interface TrainOffThreadOptions {
  layout: CorpusLayout;
  /** The source's files (the layout's corpus files are read). */
  files: readonly InputFile[];
  /** vocab_size, lowercase and everything that changes the texts (normalization, strip_niqqud, ...). */
  config: Partial<CorpusPrepConfig>;
  /** Receives tokenizer.json, vocab.txt, tokenizer_config.json, special_tokens_map.json. */
  outDir: string;
  /** The corpus as the user named it (path or URI), for the "no documents" error. Default: its files. */
  source?: string;
  /** Kills the training process and rejects with an AbortError. */
  signal?: AbortSignal;
  /** Called as the corpus is read (at most every 500 ms) and then at least every second until done. */
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainProgress {
  phase: 'reading' | 'training' | 'writing';
  /** Documents read so far (with a non-empty text). */
  docs: number;
  /** Corpus bytes read so far (decompressed). */
  bytes_read: number;
  /** Since the call. */
  elapsed_ms: number;
}

/**
 * trainWordPieceTokenizer on the corpus texts (readCorpusTexts), off the calling thread: same texts, same
 * trainer, byte-identical tokenizer files. Files appear in `outDir` only once all are written. Rejects with
 * BadInputError (bad lines, a truncated gzip, a vanished file, no documents at all) or ConfigError as the
 * in-thread path would; with an AbortError when `signal` aborts; with a plain (retryable) Error when the
 * training process dies.
 */
export async function trainWordPieceTokenizerOffThread(
  opts: TrainOffThreadOptions,
): Promise<CorpusTokenizer> {
  const started = Date.now();
  const { layout, signal, outDir } = opts;
  const cfg = resolveCorpusPrepConfig(opts.config);
  const trainOpts: TrainTokenizerOptions = {
    vocab_size: cfg.vocab_size,
    lowercase: cfg.lowercase,
    source: opts.source ?? (layout.corpus.join(', ') || 'corpus'),
  };
  checkTrainOptions(trainOpts);
  checkAborted(signal, 'tokenizer training');
  const corpus = layout.corpus.map((name) => fileByName(opts.files, name));
  const progress = progressEmitter(started, opts.onProgress);
  await mkdir(outDir, { recursive: true });
  const work = await mkdtemp(join(outDir, '.train-'));
  try {
    const job: TrainJob = { textFile: join(work, 'texts.txt'), outDir: join(work, 'out'), opts: trainOpts };
    await mkdir(job.outDir);
    const locators = corpus.map((f) => f.locator);
    if (locators.every((l) => l !== undefined)) {
      job.corpus = {
        layout,
        config: cfg,
        files: corpus.map((f, i) => ({ name: f.name, size: f.size, locator: locators[i] as InputLocator })),
      };
    } else {
      // Read here (async, a chunk at a time); only the blocking training goes to the child.
      const read = { bytes: 0 };
      let docs = 0;
      const texts = corpusTexts(layout, opts.files, cfg, signal, read);
      const n = await writeTrainingText(texts, job.textFile, () => {
        docs += 1;
        progress.update({ phase: 'reading', docs, bytes_read: read.bytes }, false);
      });
      if (n === 0) throw noDocumentsError(trainOpts.source);
    }
    await runTrainer(job, signal, progress);
    for (const name of await readdir(job.outDir)) await rename(join(job.outDir, name), join(outDir, name));
  } finally {
    progress.stop();
    await rm(work, { recursive: true, force: true });
  }
  return loadTokenizer(outDir);
}

/** What the child is asked to do (JSON over IPC). */
export interface TrainJob {
  /** Training text: written by the child when `corpus` is set, else already written by the parent. */
  textFile: string;
  /** Where the child writes the tokenizer files (the parent moves them into place). */
  outDir: string;
  opts: TrainTokenizerOptions;
  corpus?: {
    layout: CorpusLayout;
    config: CorpusPrepConfig;
    files: { name: string; size: number; locator: InputLocator }[];
  };
}

/** Messages from the child. */
export type TrainMessage =
  | { type: 'progress'; phase: TrainProgress['phase']; docs: number; bytes_read: number }
  | { type: 'done'; docs: number }
  | { type: 'error'; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** BadInputError */
  file?: string;
  line?: number;
  reason?: string;
  /** ConfigError */
  key?: string;
}

/** Errors cross the process boundary as data; the pipeline's non-retryable ones keep their class. */
export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const out: SerializedError = { name: err.name, message: err.message, stack: err.stack };
  if (err instanceof BadInputError)
    Object.assign(out, { file: err.file, line: err.line, reason: err.reason });
  if (err instanceof ConfigError) Object.assign(out, { key: err.key, reason: err.reason });
  return out;
}

function deserializeError(e: SerializedError): Error {
  let err: Error;
  if (e.name === 'BadInputError' && e.file !== undefined && e.reason !== undefined)
    err = new BadInputError(e.file, e.line ?? undefined, e.reason);
  else if (e.name === 'ConfigError' && e.key !== undefined && e.reason !== undefined)
    err = new ConfigError(e.key, e.reason);
  else if (e.name === 'AbortError') err = new AbortError(e.message);
  else {
    err = new Error(`tokenizer training: ${e.message}`);
    err.name = e.name;
  }
  if (e.stack) err.stack = `${err.name}: ${err.message}\n    (in the training process)\n${e.stack}`;
  return err;
}

interface ProgressEmitter {
  update(p: Omit<TrainProgress, 'elapsed_ms'>, force: boolean): void;
  stop(): void;
}

const READING_EVERY_MS = 500;
const REPEAT_EVERY_MS = 1000;

/** Throttles reading progress; repeats the last one every second (with a fresh elapsed_ms) while training. */
function progressEmitter(started: number, onProgress?: (p: TrainProgress) => void): ProgressEmitter {
  let last: Omit<TrainProgress, 'elapsed_ms'> | undefined;
  let emitted = 0;
  const emit = () => {
    if (!last || !onProgress) return;
    emitted = Date.now();
    onProgress({ ...last, elapsed_ms: emitted - started });
  };
  const timer = setInterval(() => {
    if (Date.now() - emitted >= REPEAT_EVERY_MS) emit();
  }, REPEAT_EVERY_MS / 4);
  timer.unref();
  return {
    update(p, force) {
      last = p;
      if (force || Date.now() - emitted >= READING_EVERY_MS) emit();
    },
    stop: () => clearInterval(timer),
  };
}

/** The training process's script: compiled next to this file, whatever the output dir. */
function workerScript(): string {
  return require.resolve('./train-worker');
}

/** The parent's node flags, minus those of the test runner, inspector and watch mode. */
function childExecArgv(): string[] {
  return process.execArgv.filter((a) => !/^--(test|experimental-test|inspect|debug|watch)/.test(a));
}

const STDERR_TAIL_BYTES = 4096;

function runTrainer(
  job: TrainJob,
  signal: AbortSignal | undefined,
  progress: ProgressEmitter,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    checkAborted(signal, 'tokenizer training');
    const child: ChildProcess = fork(workerScript(), [], {
      execArgv: childExecArgv(),
      // The trainer draws progress bars on stdout: dropped. stderr is kept (its tail) to explain a crash.
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES);
    });
    let outcome: { ok: true } | { ok: false; err: Error } | undefined;
    const onAbort = () => {
      outcome ??= { ok: false, err: abortError(signal, 'tokenizer training') };
      child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m: TrainMessage) => {
      if (m.type === 'progress')
        progress.update({ phase: m.phase, docs: m.docs, bytes_read: m.bytes_read }, true);
      else if (m.type === 'done') outcome ??= { ok: true };
      else if (m.type === 'error') outcome ??= { ok: false, err: deserializeError(m.error) };
    });
    child.on('error', (err) => {
      // Spawn failure, or the IPC channel broke; 'exit' may not follow a failed spawn.
      outcome ??= { ok: false, err: new Error(`tokenizer training process: ${err.message}`) };
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined)
        child.kill('SIGKILL');
      else finish();
    });
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      if (outcome?.ok) resolve();
      else reject(outcome?.err ?? crashError(child, stderr));
    };
    child.on('close', () => finish()); // after 'exit' and after the last message
    child.send(job);
  });
}

function crashError(child: ChildProcess, stderr: string): Error {
  const how = child.signalCode ? `was killed by ${child.signalCode}` : `exited with code ${child.exitCode}`;
  const tail = stderr.trim().split('\n').slice(-5).join('\n');
  return new Error(
    `tokenizer training process ${how} without a result (out of memory?)${tail ? `: ${tail}` : ''}`,
  );
}
