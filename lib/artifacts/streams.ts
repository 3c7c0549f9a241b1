/**
 * Stream and file helpers shared by the artifact writer and readers: hashing while bytes flow, piping a
 * source into a store, listing a local folder, and validating small numeric options.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConfigError } from '../errors';
import { compareKeys } from './keys';
import type { ArtifactStore, ObjectInfo } from './store';

/** A pass-through stream that hashes and counts what flows through it. */
export function hashingStream(): { stream: Transform; result: () => { bytes: number; sha256: string } } {
  const hash = createHash('sha256');
  let bytes = 0;
  let digest: string | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  return {
    stream,
    result: () => {
      digest ??= hash.digest('hex');
      return { bytes, sha256: digest };
    },
  };
}

/** Reads a stream to the end, returning its size and sha256 (the bytes are dropped). */
export async function hashReadable(source: Readable): Promise<{ bytes: number; sha256: string }> {
  const h = hashingStream();
  await pipeline(source, h.stream, new Writable({ write: (_chunk, _enc, cb) => cb() }));
  return h.result();
}

/** Files under a local folder, as sorted '/'-separated relative paths (symlinks followed, folders recursed). */
export async function listLocalFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string) => {
    const entries = await readdir(abs, { withFileTypes: true });
    for (const entry of entries) {
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const childAbs = path.join(abs, entry.name);
      const info = entry.isSymbolicLink() ? await stat(childAbs) : entry;
      if (info.isDirectory()) await walk(childAbs, childRel);
      else if (info.isFile()) out.push(childRel);
    }
  };
  await walk(path.resolve(dir), '');
  return out.sort(compareKeys);
}

/**
 * Pipes `source` through `through` into store.put. If the store fails, the source is destroyed (nobody reads it
 * any more); if the source fails, the put fails with the source's error.
 */
export async function putThrough(
  store: ArtifactStore,
  key: string,
  source: Readable,
  through: Transform,
): Promise<ObjectInfo> {
  const piping = pipeline(source, through).catch(() => undefined);
  try {
    const sent = await store.put(key, through);
    await piping;
    return sent;
  } catch (err) {
    through.destroy();
    source.destroy();
    await piping;
    throw err;
  }
}

/** `n` when it is a positive safe integer, else ConfigError naming the option. */
export function positiveInt(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(name, `expected a positive integer, got ${n}`);
  return n;
}
