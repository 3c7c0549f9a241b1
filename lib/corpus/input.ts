/**
 * InputFile for local files, opening an input as a decompressed byte stream, and naming what went wrong
 * while reading one (a vanished file, a truncated or corrupt gzip stream) as bad input of that file.
 */

import { once } from 'node:events';
import { statSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ArtifactMissingError, BadInputError, ConfigError } from '../errors';
import { abortError, isAbortError } from './abort';
import { RelativeLineError } from './lines';
import type { ByteRange, InputFile } from './types';

/**
 * Read size of local files: 256 KiB chunks rather than the default 64 KiB, as every read is a round trip
 * through libuv's thread pool, which stalls when the tokenizer's threads hold the cores.
 */
const READ_CHUNK_BYTES = 1 << 18;

/** An InputFile reading a local path; `name` defaults to the path itself. */
export function localInputFile(path: string, name: string = path): InputFile {
  return localFileAt(path, name, statSync(path).size);
}

/**
 * An InputFile over a local path whose size is already known (no I/O until opened). The file is opened
 * when `open` is called, so a file that vanished since it was listed fails there, as bad input naming it.
 */
export function localFileAt(path: string, name: string, size: number): InputFile {
  const abs = resolve(path);
  return {
    name,
    size,
    locator: { kind: 'local', path: abs },
    open: async (range?: ByteRange) => {
      let fh: Awaited<ReturnType<typeof open>>;
      try {
        fh = await open(abs, 'r');
      } catch (err) {
        throw inputError({ name, locator: { kind: 'local', path: abs } }, err);
      }
      // createReadStream's `end` is inclusive; ByteRange.end is exclusive. The stream closes the handle.
      return fh.createReadStream({
        highWaterMark: READ_CHUNK_BYTES,
        ...(range && { start: range.start, end: range.end - 1 }),
      });
    },
  };
}

/** Every regular file under `dir` (recursive, sorted) as InputFiles named by their path relative to `dir`. */
export async function listLocalInputs(dir: string): Promise<InputFile[]> {
  const out: InputFile[] = [];
  for (const { path, size } of await walk(dir)) {
    out.push(localFileAt(path, relative(dir, path).split(sep).join('/'), size));
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function walk(dir: string): Promise<{ path: string; size: number }[]> {
  const files: { path: string; size: number }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await walk(path)));
    else if (entry.isFile() || entry.isSymbolicLink()) {
      const info = await stat(path);
      if (info.isFile()) files.push({ path, size: info.size });
    }
  }
  return files;
}

export function isGzip(name: string): boolean {
  return name.endsWith('.gz');
}

/**
 * The decompressed bytes of `file` (a range only applies to uncompressed files), as chunks. Opening errors
 * are already named (inputError); errors while streaming are raw: pass them through inputError with the
 * last line read. A gzip error comes after every byte decoded before it, so that line is exact. With a
 * signal, reading fails with an AbortError as soon as it is aborted.
 */
export async function openDecoded(
  file: InputFile,
  range?: ByteRange,
  signal?: AbortSignal,
): Promise<AsyncIterable<Buffer>> {
  if (signal?.aborted) throw abortError(signal, `reading ${file.name}`);
  let raw: Readable;
  try {
    raw = (await file.open(range)) as Readable;
  } catch (err) {
    throw inputError(file, err);
  }
  if (signal) addAbortSignal(signal, raw);
  return isGzip(file.name) ? gunzipChunks(raw) : (raw as AsyncIterable<Buffer>);
}

/** Decoded bytes queued ahead of the reader before the compressed input is paused. */
const MAX_DECODED_AHEAD = 1 << 20;

/**
 * Gunzip `raw`. Not `for await` over a gunzip stream: that drops the chunks still buffered when the stream
 * fails, so the lines before a truncation would depend on timing. Here the gunzip stream flows into a queue
 * (bounded by pausing the input), and an error is thrown only once the queue is empty.
 */
async function* gunzipChunks(raw: Readable): AsyncGenerator<Buffer> {
  const gunzip = createGunzip();
  const queue: Buffer[] = [];
  let queued = 0;
  let done = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  let resumeInput: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const fail = (err: unknown) => {
    failure ??= err;
    done = true;
    notify();
  };
  gunzip.on('data', (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.length;
    notify();
  });
  gunzip.on('end', () => {
    done = true;
    notify();
  });
  gunzip.on('error', fail);
  const pump = async () => {
    for await (const chunk of raw as AsyncIterable<Buffer>) {
      if (done) return;
      if (!gunzip.write(chunk)) await once(gunzip, 'drain');
      while (queued > MAX_DECODED_AHEAD && !done) await new Promise<void>((r) => (resumeInput = r));
    }
    gunzip.end();
  };
  pump().catch(fail);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk) {
        queued -= chunk.length;
        if (queued <= MAX_DECODED_AHEAD / 2) resumeInput?.();
        yield chunk;
      } else if (done) {
        if (failure) throw failure;
        return;
      } else await new Promise<void>((r) => (wake = r));
    }
  } finally {
    done = true;
    resumeInput?.();
    raw.destroy();
    gunzip.destroy();
  }
}

/** Find an InputFile by name or fail with a clear message (a layout/listing mismatch is a caller bug). */
export function fileByName(files: readonly InputFile[], name: string): InputFile {
  const file = files.find((f) => f.name === name);
  if (!file) throw new RangeError(`input file ${JSON.stringify(name)} is not among the given inputs`);
  return file;
}

const GONE = 'no longer exists: was it moved or deleted during the run?';

/**
 * What went wrong reading `file`, as bad input naming it when it is the input's fault (so not retried):
 * a truncated or corrupt gzip stream ("after line N" when the reader knows it), a file that vanished or
 * became unreadable since it was listed. Errors that are already named, aborts and anything else (network
 * errors, which a retry may fix) are returned unchanged.
 */
export function inputError(
  file: Pick<InputFile, 'name' | 'locator'>,
  err: unknown,
  afterLine?: number,
): unknown {
  if (
    err instanceof BadInputError ||
    err instanceof ConfigError ||
    err instanceof RelativeLineError ||
    isAbortError(err) ||
    !(err instanceof Error)
  )
    return err;
  const where = file.locator?.kind === 'local' ? ` (${file.locator.path})` : '';
  const code = (err as NodeJS.ErrnoException).code ?? '';
  let reason: string | undefined;
  if (code.startsWith('Z_')) {
    const after = afterLine ? ` after line ${afterLine}` : ''; // none read: the file's start
    reason =
      code === 'Z_BUF_ERROR'
        ? `truncated gzip stream (${err.message})${after}`
        : `corrupt gzip stream (${gzipCause(err.message)})${after}`;
  } else if (code === 'ENOENT' || code === 'ENOTDIR') reason = `${GONE}${where}`;
  else if (code === 'EACCES' || code === 'EPERM') reason = `cannot be read: permission denied${where}`;
  else if (code === 'EISDIR')
    reason = `is a directory now, not a file${where}: was it replaced during the run?`;
  else if (code === 'ELOOP') reason = `cannot be read: too many levels of symbolic links${where}`;
  else if (err instanceof ArtifactMissingError) reason = `${GONE} (${err.message})`;
  return reason === undefined ? err : new BadInputError(file.name, undefined, reason);
}

function gzipCause(message: string): string {
  if (message === 'incorrect data check') return 'CRC mismatch: incorrect data check';
  if (message === 'incorrect length check') return 'length mismatch: incorrect length check';
  if (message === 'incorrect header check')
    return 'bad header: incorrect header check; not gzip data, or junk after its end';
  return message;
}
