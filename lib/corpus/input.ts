/** InputFile for local files, and opening an input as a decompressed byte stream. */
import { createReadStream, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { ByteRange, InputFile } from './types';

/**
 * Read size of local files: 256 KiB chunks rather than the default 64 KiB, as every read is a round trip
 * through libuv's thread pool, which stalls when the tokenizer's threads hold the cores.
 */
const READ_CHUNK_BYTES = 1 << 18;

/** An InputFile reading a local path; `name` defaults to the path itself. */
export function localInputFile(path: string, name: string = path): InputFile {
  const size = statSync(path).size;
  return {
    name,
    size,
    // createReadStream's `end` is inclusive; ByteRange.end is exclusive.
    open: async (range?: ByteRange) =>
      createReadStream(path, {
        highWaterMark: READ_CHUNK_BYTES,
        ...(range && { start: range.start, end: range.end - 1 }),
      }),
  };
}

/** Every regular file under `dir` (recursive, sorted) as InputFiles named by their path relative to `dir`. */
export async function listLocalInputs(dir: string): Promise<InputFile[]> {
  const out: InputFile[] = [];
  for (const path of await walk(dir)) {
    out.push(localInputFile(path, relative(dir, path).split(sep).join('/')));
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function walk(dir: string): Promise<string[]> {
  const paths: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) paths.push(...(await walk(path)));
    else if (entry.isFile() || (entry.isSymbolicLink() && (await stat(path)).isFile())) paths.push(path);
  }
  return paths;
}

export function isGzip(name: string): boolean {
  return name.endsWith('.gz');
}

/** The decompressed bytes of `file` (a range only applies to uncompressed files). */
export async function openDecoded(file: InputFile, range?: ByteRange): Promise<Readable> {
  const raw = (await file.open(range)) as Readable;
  if (!isGzip(file.name)) return raw;
  const gunzip = createGunzip();
  raw.on('error', (err) => gunzip.destroy(err));
  return raw.pipe(gunzip);
}

/** Find an InputFile by name or fail with a clear message (a layout/listing mismatch is a caller bug). */
export function fileByName(files: readonly InputFile[], name: string): InputFile {
  const file = files.find((f) => f.name === name);
  if (!file) throw new RangeError(`input file ${JSON.stringify(name)} is not among the given inputs`);
  return file;
}
