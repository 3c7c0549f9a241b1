/**
 * Opening a corpus source for corpus preparation: a local directory or file that the CPU workers can
 * read, or a dataset published in the artifact store by `cotmae data import` (read with ranged gets,
 * so shards stream only their own byte ranges).
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ArtifactStore, openStore, readManifest } from '../artifacts';
import type { InputFile } from '../corpus';
import { listLocalInputs, localInputFile } from '../corpus';
import { ConfigError } from '../errors';

export interface CorpusInputs {
  files: InputFile[];
  /** Identifies the content: the dataset manifest's sha256, or a digest of the local listing (name, size, mtime). */
  digest: string;
  /** Set for artifact sources: release with close(). */
  store?: ArtifactStore;
}

const MANIFEST = 'manifest.json';

/** True for `s3://...`; local paths and `file://` URIs are read directly. */
function isRemote(source: string): boolean {
  return /^s3:\/\//i.test(source);
}

export async function openCorpusSource(source: string): Promise<CorpusInputs> {
  if (isRemote(source)) return openArtifactSource(source);
  const path = source.startsWith('file://') ? fileURLToPath(source) : source;
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new ConfigError('corpus.source', `${source}: no such file or directory on this worker`);
  const files = info.isDirectory()
    ? (await listLocalInputs(path)).filter((f) => f.name !== MANIFEST && !f.name.startsWith('.'))
    : [localInputFile(path, basename(path))];
  if (files.length === 0) throw new ConfigError('corpus.source', `${source}: directory holds no files`);
  return { files, digest: await listingDigest(path, info.isDirectory(), files) };
}

async function openArtifactSource(source: string): Promise<CorpusInputs> {
  const store = openStore(source);
  try {
    const manifest = await readManifest(store, '');
    const files: InputFile[] = manifest.manifest.files.map((f) => ({
      name: f.path,
      size: f.bytes,
      open: (range) => store.getStream(f.path, range),
    }));
    return { files, digest: manifest.manifestSha256, store };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Cheap identity of a local source (no full read): names, sizes and modification times. */
async function listingDigest(root: string, isDir: boolean, files: InputFile[]): Promise<string> {
  const hash = createHash('sha256');
  for (const f of files) {
    const info = await stat(isDir ? join(root, f.name) : root);
    hash.update(`${f.name}\t${f.size}\t${info.mtimeMs}\n`);
  }
  return hash.digest('hex');
}
