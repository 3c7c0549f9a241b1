/**
 * Writing an artifact: stage the files, then commit the manifest create-only.
 *
 * 1. beginArtifact() picks an attempt id (BeginArtifactOptions.attempt, default random). Every file is
 *    written under the attempt's own staging folder `<folder>/_staged/<attempt>/<path>` (each write atomic),
 *    its sha256 and size computed from the bytes sent. Two writers of one folder never write the same key.
 * 2. commit() waits for in-flight writes, refuses to commit after a failed one, checks every file's size on
 *    the store (catches a server that altered an upload), then writes manifest.json **create-only** (S3
 *    `If-None-Match: *`; local `link(2)`): the commit point. The manifest maps each logical `path` to its
 *    `object`. Losing the race to another writer is a CommitConflictError; the loser's staged files are removed.
 * 3. After the commit, leftovers of other attempts under `_staged/` are deleted (best effort), and with
 *    `overwrite` the replaced artifact's objects that the new manifest does not use.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  ArtifactCorruptError,
  ArtifactExistsError,
  ArtifactMissingError,
  CommitConflictError,
  ConfigError,
  InvalidKeyError,
  PipelineError,
} from '../errors';
import { mapLimit } from '../util/concurrency';
import { canonicalJson, sha256Hex } from './cacheKey';
import { type CodeVersion, getCodeVersion } from './codeVersion';
import { compareKeys, folderPrefix, validateKey } from './keys';
import {
  checkFilePath,
  contentDigest,
  MANIFEST_FILE,
  MANIFEST_SCHEMA,
  type Manifest,
  type ManifestFile,
  type ManifestInput,
  parseManifest,
  type ReadManifestResult,
  SHA256_HEX,
  STAGING_DIR,
} from './manifest';
import { redactUri } from './redact';
import type { ArtifactStore, PutBody } from './store';
import { hashingStream, listLocalFiles, positiveInt, putThrough } from './streams';

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
   * un-commits it (deletes its manifest.json first), and after the new commit deletes the replaced
   * artifact's objects that the new manifest does not use.
   */
  overwrite?: boolean;
  /** Before writing the manifest, check every file's size on the store (default true). */
  checkSizes?: boolean;
  /** Uploads in flight for addLocalDir, size checks and cleanup (default 4). */
  concurrency?: number;
  /**
   * The staging id: files go to `<folder>/_staged/<attempt>/`. One path segment, `[A-Za-z0-9][A-Za-z0-9._-]*`
   * (at most 128 characters). Default: random (time + 8 hex digits). A retry that reuses an id overwrites
   * that attempt's staged files.
   */
  attempt?: string;
}

export interface CommittedArtifact {
  /** The artifact folder's URI (ends in '/'). */
  uri: string;
  /** The folder prefix within the store ('' or ending in '/'). */
  prefix: string;
  /** sha256 of manifest.json's exact bytes: what a consumer records as its input digest. */
  manifestSha256: string;
  /** contentDigest(manifest.files): the identity of the files, independent of who wrote them and when. */
  contentDigest: string;
  manifest: Manifest;
}

const ATTEMPT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function newAttemptId(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

function errorMessage(err: unknown): string {
  return redactUri((err as Error)?.message ?? String(err));
}

/**
 * Writes `body` at `key` only if no object is there: true when this call created it, false when one existed.
 * Uses the store's create-only put when it has one; otherwise HEAD, put, and a read-back check (which
 * narrows, but cannot close, the window in which two writers both succeed).
 */
export async function putIfAbsent(store: ArtifactStore, key: string, body: Buffer): Promise<boolean> {
  if (store.putIfAbsent) return store.putIfAbsent(key, body);
  if (await store.head(key)) return false;
  await store.put(key, body);
  return (await store.get(key)).equals(body);
}

export class ArtifactWriter {
  readonly prefix: string;
  readonly uri: string;
  /** This writer's staging id. */
  readonly attempt: string;
  /** Where this writer's files go, relative to the artifact folder: `_staged/<attempt>/`. */
  readonly staging: string;
  private readonly files = new Map<string, ManifestFile>();
  private readonly claimed = new Set<string>();
  private readonly pending = new Set<Promise<unknown>>();
  /** Failed writes by path (a later successful write of the same path clears its entry). */
  private readonly failures = new Map<string, unknown>();
  private readonly concurrency: number;
  private readonly checkSizes: boolean;
  private state: 'open' | 'committing' | 'committed' | 'lost' = 'open';

  /**
   * Prefer beginArtifact(), which checks the folder and the metadata. `replaced`: object keys (relative to the
   * folder) of the artifact this one replaces, deleted after the commit unless the new manifest uses them.
   */
  constructor(
    readonly store: ArtifactStore,
    prefix: string,
    readonly meta: Required<ArtifactMeta>,
    opts: BeginArtifactOptions = {},
    private readonly replaced: readonly string[] = [],
  ) {
    this.prefix = folderPrefix(prefix);
    this.uri = store.uri(this.prefix);
    this.concurrency = positiveInt('concurrency', opts.concurrency ?? 4);
    this.checkSizes = opts.checkSizes ?? true;
    this.attempt = opts.attempt ?? newAttemptId();
    if (!ATTEMPT.test(this.attempt)) {
      throw new ConfigError(
        'attempt',
        `${JSON.stringify(this.attempt)} must be 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit`,
      );
    }
    this.staging = `${STAGING_DIR}/${this.attempt}/`;
  }

  /** Writes one file of the artifact from a buffer, a string (UTF-8) or a stream. */
  writeFile(filePath: string, body: PutBody): Promise<ManifestFile> {
    return this.track(filePath, async () => {
      const key = this.stagedKey(filePath);
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
    return this.track(filePath, async () => {
      const h = hashingStream();
      const sent = await putThrough(
        this.store,
        this.stagedKey(filePath),
        createReadStream(localPath),
        h.stream,
      );
      return this.record(filePath, h.result(), sent.bytes);
    });
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
   * Lists a file already in the store below this artifact's folder, trusting the given digest; commit() still
   * checks that its object exists with that size. `object` (relative to this folder; default `path`) says
   * where the bytes are. Compatibility rule for entries copied from a nested artifact's manifest
   * (`{ ...f, path: joinKey(sub, f.path) }`): an `object` of the form `_staged/<attempt>/<p>` whose `path`
   * ends in `/<p>` is taken relative to that nested folder (`<sub>/_staged/<attempt>/<p>`). Prefer
   * recordArtifact(), which needs no such rule.
   */
  recordFile(entry: ManifestFile): void {
    const object = this.resolveRecordedObject(entry);
    this.claim(entry.path);
    if (!Number.isSafeInteger(entry.bytes) || entry.bytes < 0) {
      this.claimed.delete(entry.path);
      throw new ConfigError(`files.${entry.path}.bytes`, 'must be a non-negative integer');
    }
    if (!SHA256_HEX.test(entry.sha256)) {
      this.claimed.delete(entry.path);
      throw new ConfigError(`files.${entry.path}.sha256`, 'must be 64 hex digits');
    }
    const file: ManifestFile = { path: entry.path, bytes: entry.bytes, sha256: entry.sha256 };
    if (object !== undefined) file.object = object;
    this.files.set(entry.path, file);
  }

  /**
   * Lists every file of a committed artifact that lies below this folder (e.g. a shard committed at
   * `<folder>/shards/00001/`), as `<sub>/<path>`, its objects resolved relative to this folder. `nested` comes
   * from readManifest() on this writer's store (or one with the same root).
   */
  recordArtifact(nested: ReadManifestResult): ManifestFile[] {
    const sameStore = nested.prefix !== '' && this.store.uri(nested.prefix) === nested.uri;
    if (!sameStore || !nested.prefix.startsWith(this.prefix) || nested.prefix === this.prefix) {
      throw new InvalidKeyError(
        nested.prefix,
        `artifact ${redactUri(nested.uri)} is not below ${redactUri(this.uri)} in the same store`,
      );
    }
    const sub = nested.prefix.slice(this.prefix.length);
    const out: ManifestFile[] = [];
    for (const f of nested.manifest.files) {
      const entry = {
        path: sub + f.path,
        bytes: f.bytes,
        sha256: f.sha256,
        object: sub + (f.object ?? f.path),
      };
      this.recordFile(entry);
      out.push(this.files.get(entry.path) as ManifestFile);
    }
    return out;
  }

  /** Files recorded so far (sorted by path). */
  listFiles(): ManifestFile[] {
    return [...this.files.values()].sort((a, b) => compareKeys(a.path, b.path));
  }

  /**
   * Waits for in-flight writes, checks sizes on the store, then writes manifest.json create-only (the commit
   * point). Refuses to commit when any write failed. CommitConflictError when another writer committed the
   * folder first (this writer's staged files are then removed, and the writer cannot commit again).
   */
  async commit(stats: Record<string, unknown> = {}): Promise<CommittedArtifact> {
    if (this.state === 'lost') throw new CommitConflictError(redactUri(this.uri));
    if (this.state !== 'open') throw new Error(`artifact ${redactUri(this.uri)}: commit() called twice`);
    this.state = 'committing';
    try {
      return await this.commitNow(stats);
    } catch (err) {
      if (this.state === 'committing') this.state = 'open';
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
            `artifact ${redactUri(this.uri)}: not committed, writing ${filePath} failed: ${errorMessage(err)}`,
            { cause: err },
          );
    }
    canonicalJson(stats); // JSON only: throws ConfigError naming the bad value
    const manifestKey = this.prefix + MANIFEST_FILE;
    const files = this.listFiles();
    if (await this.store.head(manifestKey)) return this.settleExisting(files);
    if (this.checkSizes) {
      try {
        await mapLimit(files, this.concurrency, async (f) => {
          const key = this.prefix + (f.object ?? f.path);
          const info = await this.store.head(key);
          if (!info) throw new ArtifactCorruptError(this.store.uri(key), `${f.path}: missing after upload`);
          if (info.bytes !== f.bytes) {
            throw new ArtifactCorruptError(
              this.store.uri(key),
              `${f.path}: the store holds ${info.bytes} bytes but ${f.bytes} were written (server altered the upload?)`,
            );
          }
        });
      } catch (err) {
        // Another writer's commit sweeps other attempts' staged files: that is a lost race, not corruption.
        if (await this.store.head(manifestKey)) return this.settleExisting(files);
        throw err;
      }
    }
    const manifest: Manifest = {
      schema: MANIFEST_SCHEMA,
      stage: this.meta.stage,
      runId: this.meta.runId,
      cacheKey: this.meta.cacheKey,
      contentDigest: contentDigest(files),
      inputs: this.meta.inputs,
      config: this.meta.config,
      code: this.meta.code,
      files,
      stats,
      createdAt: new Date().toISOString(),
    };
    const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
    if (!(await putIfAbsent(this.store, manifestKey, body))) return this.settleExisting(files);
    this.state = 'committed';
    await this.cleanUp(files).catch(() => undefined);
    return {
      uri: this.uri,
      prefix: this.prefix,
      manifestSha256: sha256Hex(body),
      contentDigest: manifest.contentDigest as string,
      manifest,
    };
  }

  /**
   * The folder holds a manifest this writer did not just create. If it is this very attempt's (an earlier
   * commit() whose answer was lost: same files, same staged objects), the commit already happened: adopt it.
   * Otherwise the race is lost: remove this attempt's staged files (unless the winner uses them) and throw
   * CommitConflictError.
   */
  private async settleExisting(files: ManifestFile[]): Promise<CommittedArtifact> {
    let existing: ReturnType<typeof parseManifest> | undefined;
    try {
      const body = await this.store.get(this.prefix + MANIFEST_FILE);
      existing = parseManifest(body, this.uri);
    } catch {
      existing = undefined; // gone again, or unreadable: not ours either way
    }
    const ours =
      existing !== undefined &&
      files.length > 0 &&
      files.some((f) => f.object?.startsWith(this.staging)) &&
      canonicalJson(existing.manifest.files) === canonicalJson(files) &&
      existing.manifest.cacheKey === this.meta.cacheKey;
    if (existing && ours) {
      this.state = 'committed';
      await this.cleanUp(files).catch(() => undefined);
      return {
        uri: this.uri,
        prefix: this.prefix,
        manifestSha256: existing.manifestSha256,
        contentDigest: existing.contentDigest,
        manifest: existing.manifest,
      };
    }
    this.state = 'lost';
    const winnerUsesOurs = existing?.manifest.files.some((f) =>
      (f.object ?? f.path).startsWith(this.staging),
    );
    if (!winnerUsesOurs) await this.store.deletePrefix(this.prefix + this.staging).catch(() => undefined);
    throw new CommitConflictError(redactUri(this.uri));
  }

  /**
   * Best effort, after the commit: deletes other attempts' staged files (whole attempt folders when the new
   * manifest uses none of their objects) and, on overwrite, the replaced artifact's objects that the new
   * manifest does not use and that do not belong to a committed nested artifact.
   */
  private async cleanUp(files: ManifestFile[]): Promise<void> {
    const used = new Set(files.map((f) => f.object ?? f.path));
    const stagingRoot = `${this.prefix}${STAGING_DIR}/`;
    const attempts = new Map<string, string[]>();
    for await (const { key } of this.store.list(stagingRoot)) {
      const rel = key.slice(this.prefix.length);
      const attempt = rel.slice(STAGING_DIR.length + 1).split('/')[0] ?? '';
      if (attempt === '' || used.has(rel)) continue;
      const list = attempts.get(attempt) ?? [];
      list.push(rel);
      attempts.set(attempt, list);
    }
    const usedAttempts = new Set(
      [...used]
        .filter((o) => o.startsWith(stagingRoot.slice(this.prefix.length)))
        .map((o) => o.split('/')[1]),
    );
    const deletions: (() => Promise<unknown>)[] = [];
    for (const [attempt, rels] of attempts) {
      if (!usedAttempts.has(attempt))
        deletions.push(() => this.store.deletePrefix(`${stagingRoot}${attempt}/`));
      else for (const rel of rels) deletions.push(() => this.store.delete(this.prefix + rel));
    }
    const nestedCommitted = new Map<string, Promise<boolean>>();
    const underNestedArtifact = async (rel: string): Promise<boolean> => {
      const parts = rel.split('/');
      for (let i = 1; i < parts.length; i++) {
        const sub = `${parts.slice(0, i).join('/')}/`;
        let p = nestedCommitted.get(sub);
        if (!p) {
          p = this.store.head(this.prefix + sub + MANIFEST_FILE).then((info) => info !== undefined);
          nestedCommitted.set(sub, p);
        }
        if (await p) return true;
      }
      return false;
    };
    for (const rel of new Set(this.replaced)) {
      if (used.has(rel) || rel.startsWith(`${STAGING_DIR}/`)) continue; // staged ones: swept above
      deletions.push(async () => {
        if (!(await underNestedArtifact(rel))) await this.store.delete(this.prefix + rel);
      });
    }
    await mapLimit(deletions, this.concurrency, (d) => d().catch(() => undefined));
  }

  private stagedKey(filePath: string): string {
    return this.prefix + this.staging + filePath;
  }

  private resolveRecordedObject(entry: ManifestFile): string | undefined {
    const object = entry.object;
    if (object === undefined || object === entry.path) return undefined;
    validateKey(object);
    if (object === MANIFEST_FILE)
      throw new InvalidKeyError(object, `'${MANIFEST_FILE}' is the manifest, not a file's object`);
    const staged = `${STAGING_DIR}/`;
    if (object.startsWith(staged)) {
      const rest = object.slice(staged.length);
      const slash = rest.indexOf('/');
      const tail = slash < 0 ? '' : rest.slice(slash + 1);
      if (tail !== '' && entry.path !== tail && entry.path.endsWith(`/${tail}`)) {
        return validateKey(entry.path.slice(0, entry.path.length - tail.length) + object);
      }
    }
    return object;
  }

  private claim(filePath: string): void {
    if (this.state !== 'open') throw new Error(`artifact ${redactUri(this.uri)}: already committed`);
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

  private record(
    filePath: string,
    digest: { bytes: number; sha256: string },
    sentBytes: number,
  ): ManifestFile {
    if (sentBytes !== digest.bytes) {
      throw new ArtifactCorruptError(
        this.store.uri(this.stagedKey(filePath)),
        `${filePath}: hashed ${digest.bytes} bytes but the store wrote ${sentBytes}`,
      );
    }
    const entry: ManifestFile = {
      path: filePath,
      bytes: digest.bytes,
      sha256: digest.sha256,
      object: this.staging + filePath,
    };
    this.files.set(filePath, entry);
    return entry;
  }
}

/**
 * Starts writing an artifact in folder `prefix` of `store`. Throws ArtifactExistsError when the folder is
 * already committed (unless `overwrite`, which un-commits it first). Nothing is deleted here: files staged by
 * earlier, uncommitted attempts are swept after the next successful commit.
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
  let replaced: string[] = [];
  if (await store.head(manifestKey)) {
    if (!opts.overwrite) throw new ArtifactExistsError(redactUri(store.uri(folder)));
    try {
      const old = parseManifest(await store.get(manifestKey), store.uri(folder)).manifest;
      replaced = old.files.map((f) => f.object ?? f.path);
    } catch (err) {
      // A corrupt (or meanwhile deleted) manifest: nothing known to clean up later.
      if (!(err instanceof ArtifactCorruptError || err instanceof ArtifactMissingError)) throw err;
    }
    await store.delete(manifestKey); // un-commit first: from here on readers see an incomplete folder
  }
  return new ArtifactWriter(store, folder, full, opts, replaced);
}
