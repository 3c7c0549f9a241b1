/**
 * Artifacts: a folder of files plus `manifest.json`, written last.
 *
 * Commit protocol: files are written (each atomically) while their sha256 and size are computed from the
 * bytes sent; commit() checks every file's size on the store (catches a server that altered an upload),
 * then writes manifest.json. The manifest is the commit point: a folder without one is incomplete and
 * refused by readManifest/fetchArtifact (ArtifactMissingError), whatever files it holds. Readers verify
 * files against the manifest (verifyArtifact, fetchArtifact) and name the file at fault
 * (ArtifactCorruptError). The manifest's own sha256 is what downstream stages record as their input digest.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ArtifactCorruptError,
  ArtifactExistsError,
  ArtifactMissingError,
  ConfigError,
  InvalidKeyError,
  PipelineError,
} from '../errors';
import { canonicalJson, sha256Hex } from './cacheKey';
import { type CodeVersion, getCodeVersion } from './codeVersion';
import { compareKeys, folderPrefix, isValidKey, validateKey } from './keys';
import type { ArtifactStore, PutBody } from './store';

export const MANIFEST_SCHEMA = 'cotmae.manifest/v1';
export const MANIFEST_FILE = 'manifest.json';

export interface ManifestInput {
  /** The input's role in the stage, e.g. 'corpus', 'tokenizer'. */
  name: string;
  uri: string;
  manifestSha256: string;
}

export interface ManifestFile {
  /** Relative to the artifact folder, '/'-separated. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  schema: typeof MANIFEST_SCHEMA;
  stage: string;
  runId: string;
  cacheKey: string;
  inputs: ManifestInput[];
  /** The stage's resolved config (JSON). */
  config: unknown;
  code: CodeVersion;
  /** Sorted by path (UTF-8 byte order). */
  files: ManifestFile[];
  /** Counts and measures (JSON). */
  stats: Record<string, unknown>;
  /** ISO 8601, UTC. */
  createdAt: string;
}

export interface ArtifactMeta {
  stage: string;
  runId: string;
  cacheKey: string;
  inputs?: ManifestInput[];
  config: unknown;
  /** Default: getCodeVersion() of the running process. */
  code?: CodeVersion;
}

export interface BeginArtifactOptions {
  /**
   * When the folder already holds a committed artifact: false (default) throws ArtifactExistsError; true
   * un-commits it (deletes its manifest.json first) and writes over it.
   */
  overwrite?: boolean;
  /** Before writing the manifest, check every file's size on the store (default true). */
  checkSizes?: boolean;
  /** Uploads in flight for addLocalDir and size checks (default 4). */
  concurrency?: number;
}

export interface CommittedArtifact {
  /** The artifact folder's URI (ends in '/'). */
  uri: string;
  /** The folder prefix within the store ('' or ending in '/'). */
  prefix: string;
  /** sha256 of manifest.json's exact bytes: what a consumer records as its input digest. */
  manifestSha256: string;
  manifest: Manifest;
}

export interface ReadManifestResult {
  uri: string;
  prefix: string;
  manifestSha256: string;
  manifest: Manifest;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

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

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first failure (after all settle). */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async () => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failure) throw failure.err;
  return results;
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
async function putThrough(store: ArtifactStore, key: string, source: Readable, through: Transform) {
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

function checkFilePath(p: string): string {
  validateKey(p);
  if (p === MANIFEST_FILE)
    throw new InvalidKeyError(p, `'${MANIFEST_FILE}' is reserved for the artifact's manifest`);
  return p;
}

function positive(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(name, `expected a positive integer, got ${n}`);
  return n;
}

export class ArtifactWriter {
  readonly prefix: string;
  readonly uri: string;
  private readonly files = new Map<string, ManifestFile>();
  private readonly claimed = new Set<string>();
  private readonly pending = new Set<Promise<unknown>>();
  /** Failed writes by path (a later successful write of the same path clears its entry). */
  private readonly failures = new Map<string, unknown>();
  private readonly concurrency: number;
  private readonly checkSizes: boolean;
  private state: 'open' | 'committing' | 'committed' = 'open';

  constructor(
    readonly store: ArtifactStore,
    prefix: string,
    readonly meta: Required<ArtifactMeta>,
    opts: BeginArtifactOptions = {},
  ) {
    this.prefix = folderPrefix(prefix);
    this.uri = store.uri(this.prefix);
    this.concurrency = positive('concurrency', opts.concurrency ?? 4);
    this.checkSizes = opts.checkSizes ?? true;
  }

  /** Writes one file of the artifact from a buffer, a string (UTF-8) or a stream. */
  writeFile(filePath: string, body: PutBody): Promise<ManifestFile> {
    return this.track(filePath, async () => {
      const key = this.prefix + filePath;
      if (body instanceof Readable) {
        const h = hashingStream();
        const sent = await putThrough(this.store, key, body, h.stream);
        return this.record(filePath, h.result(), sent.bytes);
      }
      const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      const sent = await this.store.put(key, data);
      return this.record(filePath, { bytes: data.length, sha256: sha256Hex(Buffer.from(data)) }, sent.bytes);
    });
  }

  /** Uploads a local file as `filePath`, hashing it in the same read. */
  addLocalFile(filePath: string, localPath: string): Promise<ManifestFile> {
    return this.track(filePath, () => this.uploadLocal(filePath, localPath));
  }

  /** Uploads every file under a local folder (recursively), as `<under>/<relative path>`. */
  async addLocalDir(dir: string, opts: { under?: string } = {}): Promise<ManifestFile[]> {
    const under = opts.under ? folderPrefix(opts.under) : '';
    const rels = await listLocalFiles(dir);
    const entries = rels.map((rel) => ({ filePath: under + rel, local: path.join(dir, ...rel.split('/')) }));
    for (const e of entries) {
      checkFilePath(e.filePath);
      if (this.claimed.has(e.filePath))
        throw new InvalidKeyError(e.filePath, 'written twice in the same artifact');
    }
    return mapLimit(entries, this.concurrency, (e) => this.addLocalFile(e.filePath, e.local));
  }

  /**
   * Lists a file already in the store under this artifact's folder (e.g. written by an earlier activity),
   * trusting the given digest; commit() still checks that it exists with that size.
   */
  recordFile(entry: ManifestFile): void {
    this.claim(entry.path);
    if (!Number.isSafeInteger(entry.bytes) || entry.bytes < 0) {
      throw new ConfigError(`files.${entry.path}.bytes`, 'must be a non-negative integer');
    }
    if (!SHA256_HEX.test(entry.sha256))
      throw new ConfigError(`files.${entry.path}.sha256`, 'must be 64 hex digits');
    this.files.set(entry.path, { path: entry.path, bytes: entry.bytes, sha256: entry.sha256 });
  }

  /** Files recorded so far (sorted by path). */
  listFiles(): ManifestFile[] {
    return [...this.files.values()].sort((a, b) => compareKeys(a.path, b.path));
  }

  /**
   * Waits for in-flight writes, checks sizes on the store, then writes manifest.json (the commit point).
   * Refuses to commit when any write failed.
   */
  async commit(stats: Record<string, unknown> = {}): Promise<CommittedArtifact> {
    if (this.state !== 'open') throw new Error(`artifact ${this.uri}: commit() called twice`);
    this.state = 'committing';
    try {
      return await this.commitNow(stats);
    } catch (err) {
      this.state = 'open';
      throw err;
    }
  }

  private async commitNow(stats: Record<string, unknown>): Promise<CommittedArtifact> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    const failed = this.failures.entries().next();
    if (!failed.done) {
      const [filePath, err] = failed.value;
      throw err instanceof PipelineError
        ? err
        : new Error(
            `artifact ${this.uri}: not committed, writing ${filePath} failed: ${(err as Error)?.message ?? err}`,
            {
              cause: err,
            },
          );
    }
    canonicalJson(stats); // JSON only: throws ConfigError naming the bad value
    const files = this.listFiles();
    if (this.checkSizes) {
      await mapLimit(files, this.concurrency, async (f) => {
        const info = await this.store.head(this.prefix + f.path);
        if (!info)
          throw new ArtifactCorruptError(
            this.store.uri(this.prefix + f.path),
            `${f.path}: missing after upload`,
          );
        if (info.bytes !== f.bytes) {
          throw new ArtifactCorruptError(
            this.store.uri(this.prefix + f.path),
            `${f.path}: the store holds ${info.bytes} bytes but ${f.bytes} were written (server altered the upload?)`,
          );
        }
      });
    }
    const manifest: Manifest = {
      schema: MANIFEST_SCHEMA,
      stage: this.meta.stage,
      runId: this.meta.runId,
      cacheKey: this.meta.cacheKey,
      inputs: this.meta.inputs,
      config: this.meta.config,
      code: this.meta.code,
      files,
      stats,
      createdAt: new Date().toISOString(),
    };
    const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
    await this.store.put(this.prefix + MANIFEST_FILE, body);
    this.state = 'committed';
    return { uri: this.uri, prefix: this.prefix, manifestSha256: sha256Hex(body), manifest };
  }

  private claim(filePath: string): void {
    if (this.state !== 'open') throw new Error(`artifact ${this.uri}: already committed`);
    checkFilePath(filePath);
    if (this.claimed.has(filePath)) throw new InvalidKeyError(filePath, 'written twice in the same artifact');
    this.claimed.add(filePath);
  }

  /**
   * Claims `filePath` and runs the write. Bad paths reject (never throw synchronously). The returned promise is
   * already handled, so a write that is not awaited cannot crash the process: commit() reports its failure.
   */
  private track(filePath: string, fn: () => Promise<ManifestFile>): Promise<ManifestFile> {
    try {
      this.claim(filePath);
    } catch (err) {
      return Promise.reject(err);
    }
    const p = fn();
    this.pending.add(p);
    p.then(
      () => {
        this.pending.delete(p);
        this.failures.delete(filePath);
      },
      (err: unknown) => {
        this.pending.delete(p);
        this.claimed.delete(filePath); // may be written again
        this.failures.set(filePath, err);
      },
    );
    return p;
  }

  private async uploadLocal(filePath: string, localPath: string): Promise<ManifestFile> {
    const h = hashingStream();
    const sent = await putThrough(this.store, this.prefix + filePath, createReadStream(localPath), h.stream);
    return this.record(filePath, h.result(), sent.bytes);
  }

  private record(
    filePath: string,
    digest: { bytes: number; sha256: string },
    sentBytes: number,
  ): ManifestFile {
    if (sentBytes !== digest.bytes) {
      throw new ArtifactCorruptError(
        this.store.uri(this.prefix + filePath),
        `${filePath}: hashed ${digest.bytes} bytes but the store wrote ${sentBytes}`,
      );
    }
    const entry = { path: filePath, bytes: digest.bytes, sha256: digest.sha256 };
    this.files.set(filePath, entry);
    return entry;
  }
}

/**
 * Starts writing an artifact in folder `prefix` of `store`. Throws ArtifactExistsError when the folder is
 * already committed (unless `overwrite`). Files left by an earlier, uncommitted attempt are not deleted:
 * they are overwritten when written again, and ignored otherwise (only the manifest's files count).
 */
export async function beginArtifact(
  store: ArtifactStore,
  prefix: string,
  meta: ArtifactMeta,
  opts: BeginArtifactOptions = {},
): Promise<ArtifactWriter> {
  const folder = folderPrefix(prefix);
  const full: Required<ArtifactMeta> = {
    stage: meta.stage,
    runId: meta.runId,
    cacheKey: meta.cacheKey,
    inputs: (meta.inputs ?? []).map((i) => ({ name: i.name, uri: i.uri, manifestSha256: i.manifestSha256 })),
    config: meta.config ?? null,
    code: meta.code ?? getCodeVersion(),
  };
  for (const [k, v] of [
    ['stage', full.stage],
    ['runId', full.runId],
    ['cacheKey', full.cacheKey],
  ] as const) {
    if (typeof v !== 'string' || v === '') throw new ConfigError(k, 'must be a non-empty string');
  }
  for (const input of full.inputs) {
    if (!SHA256_HEX.test(input.manifestSha256)) {
      throw new ConfigError(`inputs.${input.name}.manifestSha256`, 'must be 64 lowercase hex digits');
    }
  }
  canonicalJson(full.config); // JSON only
  const manifestKey = folder + MANIFEST_FILE;
  if (await store.head(manifestKey)) {
    if (!opts.overwrite) throw new ArtifactExistsError(store.uri(folder));
    await store.delete(manifestKey); // un-commit first: from here on readers see an incomplete folder
  }
  return new ArtifactWriter(store, folder, full, opts);
}

function corrupt(uri: string, reason: string): never {
  throw new ArtifactCorruptError(uri, reason);
}

/** Checks a parsed manifest's shape; throws ArtifactCorruptError. */
export function validateManifest(value: unknown, uri: string): Manifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    corrupt(uri, 'manifest.json is not an object');
  const m = value as Record<string, unknown>;
  if (m.schema !== MANIFEST_SCHEMA) corrupt(uri, `unsupported manifest schema ${JSON.stringify(m.schema)}`);
  for (const k of ['stage', 'runId', 'cacheKey', 'createdAt']) {
    if (typeof m[k] !== 'string') corrupt(uri, `manifest.${k} must be a string`);
  }
  if (!Array.isArray(m.inputs)) corrupt(uri, 'manifest.inputs must be an array');
  for (const input of m.inputs as unknown[]) {
    const i = input as Record<string, unknown> | null;
    if (
      typeof i !== 'object' ||
      i === null ||
      typeof i.name !== 'string' ||
      typeof i.uri !== 'string' ||
      typeof i.manifestSha256 !== 'string'
    ) {
      corrupt(uri, 'manifest.inputs entries need name, uri, manifestSha256');
    }
  }
  const code = m.code as Record<string, unknown> | null;
  if (typeof code !== 'object' || code === null || typeof code.gitCommit !== 'string') {
    corrupt(uri, 'manifest.code.gitCommit must be a string');
  }
  if (typeof m.stats !== 'object' || m.stats === null) corrupt(uri, 'manifest.stats must be an object');
  if (!Array.isArray(m.files)) corrupt(uri, 'manifest.files must be an array');
  const seen = new Set<string>();
  for (const file of m.files as unknown[]) {
    const f = file as Record<string, unknown> | null;
    if (typeof f !== 'object' || f === null) corrupt(uri, 'manifest.files entries must be objects');
    const p = f.path;
    if (typeof p !== 'string' || !isValidKey(p) || p === MANIFEST_FILE) {
      corrupt(uri, `manifest lists an invalid file path ${JSON.stringify(p)}`);
    }
    if (seen.has(p)) corrupt(uri, `manifest lists ${p} twice`);
    seen.add(p);
    if (typeof f.bytes !== 'number' || !Number.isSafeInteger(f.bytes) || f.bytes < 0) {
      corrupt(uri, `${p}: bad size in manifest`);
    }
    if (typeof f.sha256 !== 'string' || !SHA256_HEX.test(f.sha256))
      corrupt(uri, `${p}: bad sha256 in manifest`);
  }
  return value as Manifest;
}

/**
 * Reads and checks an artifact's manifest. ArtifactMissingError when there is none (the folder is absent or
 * was never committed); ArtifactCorruptError when it is not a valid v1 manifest.
 */
export async function readManifest(store: ArtifactStore, prefix: string): Promise<ReadManifestResult> {
  const folder = folderPrefix(prefix);
  const uri = store.uri(folder);
  let body: Buffer;
  try {
    body = await store.get(folder + MANIFEST_FILE);
  } catch (err) {
    if (err instanceof ArtifactMissingError) {
      throw new ArtifactMissingError(
        uri,
        `no ${MANIFEST_FILE}: the artifact is missing or was never committed`,
      );
    }
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    corrupt(uri, `${MANIFEST_FILE} is not valid JSON`);
  }
  return { uri, prefix: folder, manifestSha256: sha256Hex(body), manifest: validateManifest(parsed, uri) };
}

/** True when `prefix` holds a manifest.json (a committed artifact; its files are not checked). */
export async function isCommitted(store: ArtifactStore, prefix: string): Promise<boolean> {
  return (await store.head(folderPrefix(prefix) + MANIFEST_FILE)) !== undefined;
}

export interface VerifyOptions {
  /** Files checked at once (default 4). */
  concurrency?: number;
  /** Only compare sizes (no download): fast, catches truncation and framing, not same-size corruption. */
  sizesOnly?: boolean;
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
  const concurrency = positive('concurrency', opts.concurrency ?? 4);
  const files = read.manifest.files;
  await mapLimit(files, concurrency, async (f) => {
    const key = read.prefix + f.path;
    const info = await store.head(key);
    if (!info) corrupt(store.uri(key), `${f.path}: listed in the manifest but missing`);
    if (info.bytes !== f.bytes)
      corrupt(store.uri(key), `${f.path}: ${info.bytes} bytes, manifest says ${f.bytes}`);
  });
  if (opts.sizesOnly) return read;
  await mapLimit(files, concurrency, async (f) => {
    const key = read.prefix + f.path;
    const h = hashingStream();
    await pipeline(await store.getStream(key), h.stream, new Writable({ write: (_chunk, _enc, cb) => cb() }));
    const got = h.result();
    if (got.bytes !== f.bytes)
      corrupt(store.uri(key), `${f.path}: read ${got.bytes} bytes, manifest says ${f.bytes}`);
    if (got.sha256 !== f.sha256)
      corrupt(store.uri(key), `${f.path}: sha256 ${got.sha256}, manifest says ${f.sha256}`);
  });
  return read;
}

export interface FetchOptions {
  concurrency?: number;
}

/**
 * Downloads a committed artifact into `localDir` (created if needed), verifying each file's size and sha256
 * while it streams (ArtifactCorruptError naming the file; nothing half-written is left under its name), then
 * writes manifest.json last, byte for byte, so that `localDir` is itself a committed artifact in a local store.
 * A manifest.json already in `localDir` is removed first. Files in `localDir` not in the manifest are kept.
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
  const concurrency = positive('concurrency', opts.concurrency ?? 4);
  await mapLimit(read.manifest.files, concurrency, async (f) => {
    const key = read.prefix + f.path;
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
  await writeFile(tmp, manifestBytes);
  await rename(tmp, path.join(dir, MANIFEST_FILE));
  return { ...read, dir };
}
