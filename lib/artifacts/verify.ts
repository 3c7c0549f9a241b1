/**
 * Reading a committed artifact's files: verify them against the manifest, fetch them into a local folder, or
 * read one. Every file is found through the manifest (its `object`, else its `path`), and every check names
 * the logical file at fault (ArtifactCorruptError).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ArtifactCorruptError } from '../errors';
import { mapLimit } from '../util/concurrency';
import { sha256Hex } from './cacheKey';
import {
  artifactObjectKey,
  MANIFEST_FILE,
  type Manifest,
  objectKeyOf,
  type ReadManifestResult,
  readManifest,
} from './manifest';
import type { ArtifactStore } from './store';
import { hashingStream, hashReadable, positiveInt } from './streams';

function corrupt(uri: string, reason: string): never {
  throw new ArtifactCorruptError(uri, reason);
}

export interface VerifyOptions {
  /** Files checked at once (default 4). */
  concurrency?: number;
  /** Only compare sizes (no download): fast, catches truncation and framing, not same-size corruption. */
  sizesOnly?: boolean;
}

/** Checks every listed file's size with a HEAD (no download). ArtifactCorruptError names the first bad file. */
export async function checkArtifactSizes(
  store: ArtifactStore,
  read: ReadManifestResult,
  concurrency = 4,
): Promise<void> {
  await mapLimit(read.manifest.files, positiveInt('concurrency', concurrency), async (f) => {
    const key = objectKeyOf(read.prefix, f);
    const info = await store.head(key);
    if (!info) corrupt(store.uri(key), `${f.path}: listed in the manifest but missing`);
    if (info.bytes !== f.bytes)
      corrupt(store.uri(key), `${f.path}: ${info.bytes} bytes, manifest says ${f.bytes}`);
  });
}

/**
 * Checks every file in the manifest: present, same size, same sha256. Throws ArtifactCorruptError naming
 * the first bad file (sizes are all checked before any content is hashed).
 */
export async function verifyArtifact(
  store: ArtifactStore,
  prefix: string,
  opts: VerifyOptions = {},
): Promise<ReadManifestResult> {
  const read = await readManifest(store, prefix);
  const concurrency = positiveInt('concurrency', opts.concurrency ?? 4);
  await checkArtifactSizes(store, read, concurrency);
  if (opts.sizesOnly) return read;
  await mapLimit(read.manifest.files, concurrency, async (f) => {
    const key = objectKeyOf(read.prefix, f);
    const got = await hashReadable(await store.getStream(key));
    if (got.bytes !== f.bytes)
      corrupt(store.uri(key), `${f.path}: read ${got.bytes} bytes, manifest says ${f.bytes}`);
    if (got.sha256 !== f.sha256)
      corrupt(store.uri(key), `${f.path}: sha256 ${got.sha256}, manifest says ${f.sha256}`);
  });
  return read;
}

/**
 * Reads one file of a committed artifact by its logical path, checking its size and sha256 against the
 * manifest. ArtifactMissingError when the artifact is not committed or does not list `filePath`;
 * ArtifactCorruptError when the bytes do not match. Pass `read` to reuse a manifest already read.
 */
export async function readArtifactFile(
  store: ArtifactStore,
  prefix: string,
  filePath: string,
  read?: ReadManifestResult,
): Promise<Buffer> {
  const r = read ?? (await readManifest(store, prefix));
  const key = artifactObjectKey(r, filePath);
  const file = r.manifest.files.find((f) => f.path === filePath);
  const data = await store.get(key);
  if (file && data.length !== file.bytes)
    corrupt(store.uri(key), `${filePath}: read ${data.length} bytes, manifest says ${file.bytes}`);
  const digest = sha256Hex(data);
  if (file && digest !== file.sha256)
    corrupt(store.uri(key), `${filePath}: sha256 ${digest}, manifest says ${file.sha256}`);
  return data;
}

export interface FetchOptions {
  concurrency?: number;
}

/**
 * The manifest a fetched copy holds: the same, with every file at its own path (no `object`). Its bytes equal
 * the source manifest's when no file had an `object` (v1, recorded files); its contentDigest always does.
 */
function localManifestBytes(manifest: Manifest, original: Buffer): Buffer {
  if (!manifest.files.some((f) => f.object !== undefined)) return original;
  const files = manifest.files.map(({ object: _object, ...rest }) => rest);
  return Buffer.from(`${JSON.stringify({ ...manifest, files }, null, 2)}\n`, 'utf8');
}

/**
 * Downloads a committed artifact into `localDir` (created if needed), each file under its logical path,
 * verifying its size and sha256 while it streams (ArtifactCorruptError naming the file; nothing half-written is
 * left under its name), then writes manifest.json last, so that `localDir` is itself a committed artifact in a
 * local store, with the same contentDigest. The local manifest is the source's with the `object` fields
 * dropped (files sit at their paths locally): byte-identical when no file had one. A manifest.json already in
 * `localDir` is removed first. Files in `localDir` not in the manifest are kept. Returns the source's manifest
 * (`manifestSha256` is the store's).
 */
export async function fetchArtifact(
  store: ArtifactStore,
  prefix: string,
  localDir: string,
  opts: FetchOptions = {},
): Promise<ReadManifestResult & { dir: string }> {
  const read = await readManifest(store, prefix);
  const dir = path.resolve(localDir);
  await mkdir(dir, { recursive: true });
  await rm(path.join(dir, MANIFEST_FILE), { force: true });
  const concurrency = positiveInt('concurrency', opts.concurrency ?? 4);
  await mapLimit(read.manifest.files, concurrency, async (f) => {
    const key = objectKeyOf(read.prefix, f);
    const dest = path.join(dir, ...f.path.split('/'));
    await mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.tmp-cotmae-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const h = hashingStream();
    try {
      await pipeline(await store.getStream(key), h.stream, createWriteStream(tmp, { flags: 'wx' }));
      const got = h.result();
      if (got.bytes !== f.bytes)
        corrupt(store.uri(key), `${f.path}: read ${got.bytes} bytes, manifest says ${f.bytes}`);
      if (got.sha256 !== f.sha256) {
        corrupt(store.uri(key), `${f.path}: sha256 ${got.sha256}, manifest says ${f.sha256}`);
      }
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  });
  const manifestBytes = await store.get(read.prefix + MANIFEST_FILE);
  if (sha256Hex(manifestBytes) !== read.manifestSha256) {
    corrupt(read.uri, `${MANIFEST_FILE} changed while the artifact was being fetched`);
  }
  const tmp = path.join(dir, `.${MANIFEST_FILE}.tmp-cotmae-${process.pid}`);
  await writeFile(tmp, localManifestBytes(read.manifest, manifestBytes));
  await rename(tmp, path.join(dir, MANIFEST_FILE));
  return { ...read, dir };
}
