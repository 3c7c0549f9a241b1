/**
 * Opening a corpus source for corpus preparation: a local directory or file that the CPU workers can
 * read, or a dataset published in the artifact store by `cotmae data import` (read with ranged gets,
 * so shards stream only their own byte ranges).
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ArtifactStore, compareKeys, openStore, readManifest } from '../artifacts';
import type { InputFile } from '../corpus';
import { listLocalInputs, localInputFile } from '../corpus';
import { abortError } from '../corpus/abort';
import { inputError } from '../corpus/input';
import { ConfigError } from '../errors';

export interface CorpusInputs {
  files: InputFile[];
  /**
   * Identifies the content. Dataset: its manifest's content digest. Local source: the content digest of its files
   * (localContentDigest: names and sha256 of every file's bytes; mtimes do not count). '' when not
   * computed (`digest: false`).
   */
  digest: string;
  /** Set for artifact sources: release with close(). */
  store?: ArtifactStore;
}

export interface OpenCorpusSourceOptions {
  /** Compute `digest` (reads every byte of a local source). Default true. */
  digest?: boolean;
  /** Aborts the digest (AbortError). */
  signal?: AbortSignal;
}

const MANIFEST = 'manifest.json';

/** True for `s3://...`; local paths and `file://` URIs are read directly. */
function isRemote(source: string): boolean {
  return /^s3:\/\//i.test(source);
}

export async function openCorpusSource(
  source: string,
  opts: OpenCorpusSourceOptions = {},
): Promise<CorpusInputs> {
  if (isRemote(source)) return openArtifactSource(source);
  const path = source.startsWith('file://') ? fileURLToPath(source) : source;
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new ConfigError('corpus.source', `${source}: no such file or directory on this worker`);
  const files = info.isDirectory()
    ? (await listLocalInputs(path)).filter((f) => f.name !== MANIFEST && !f.name.startsWith('.'))
    : [localInputFile(path, basename(path))];
  if (files.length === 0) throw new ConfigError('corpus.source', `${source}: directory holds no files`);
  const digest = opts.digest === false ? '' : await localContentDigest(files, opts.signal);
  return { files, digest };
}

async function openArtifactSource(source: string): Promise<CorpusInputs> {
  const store = openStore(source);
  try {
    const { manifest, contentDigest, prefix } = await readManifest(store, '');
    const files: InputFile[] = manifest.files.map((f) => {
      // A file's bytes are at its `object` when the manifest says so (staged writes), else at its path.
      const key = prefix + (f.object ?? f.path);
      return {
        name: f.path,
        size: f.bytes,
        locator: { kind: 'store', root: store.rootUri, key },
        open: (range) => store.getStream(key, range),
      };
    });
    // Content, not manifest bytes: re-importing the same files gives the same identity (and cache keys).
    return { files, digest: contentDigest, store };
  } catch (err) {
    await store.close();
    throw err;
  }
}

const HASH_CHUNK_BYTES = 1 << 20;

/**
 * Content identity of a set of files: sha256 over the lines `<sha256 of the file's bytes>  <name>\n`, sorted
 * by name in UTF-8 byte order (the `sha256sum` format, as an artifact manifest's content digest). Touching
 * a file keeps it; changing a byte or renaming a file changes it. Each file is streamed (1 MiB reads, no
 * full buffering); the signal is checked between reads. A file that cannot be read is a BadInputError.
 */
export async function localContentDigest(files: readonly InputFile[], signal?: AbortSignal): Promise<string> {
  const lines: { name: string; sha256: string }[] = [];
  for (const f of files) {
    if (f.locator?.kind !== 'local')
      throw new RangeError(`localContentDigest: ${JSON.stringify(f.name)} is not a local file`);
    lines.push({ name: f.name, sha256: await sha256File(f, f.locator.path, signal) });
  }
  lines.sort((a, b) => compareKeys(a.name, b.name));
  const hash = createHash('sha256');
  for (const l of lines) hash.update(`${l.sha256}  ${l.name}\n`);
  return hash.digest('hex');
}

async function sha256File(file: InputFile, path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    for (;;) {
      if (signal?.aborted) throw abortError(signal, `digesting ${file.name}`);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } catch (err) {
    throw inputError(file, err);
  } finally {
    await fh?.close();
  }
  return hash.digest('hex');
}
