/**
 * The artifact store: one small interface over a local directory or an S3-compatible bucket.
 * Keys are '/'-separated relative paths validated by keys.ts; every method refuses a bad key with
 * InvalidKeyError before any I/O. Both backends pass the same test suite (test/unit/artifacts/store-suite.ts).
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError } from '../errors';
import { folderPrefix } from './keys';
import { LocalStore } from './local';
import { redactUri } from './redact';
import { S3Store, type S3StoreOptions } from './s3';

/** A byte range: `start` inclusive, `end` exclusive (like Buffer.subarray). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface ObjectInfo {
  key: string;
  bytes: number;
}

export type PutBody = Buffer | Uint8Array | string | Readable;

export interface ArtifactStore {
  readonly kind: 'local' | 's3';
  /** The store's root as a URI: `file:///abs/dir/` or `s3://bucket/prefix/`. */
  readonly rootUri: string;
  /** The URI of `key` (`file:///abs/dir/key`, `s3://bucket/prefix/key`). */
  uri(key: string): string;
  /** Writes an object. A Readable is streamed (multipart on S3); strings are UTF-8. Readers never see a partial object. */
  put(key: string, body: PutBody): Promise<ObjectInfo>;
  /** Uploads a local file (streamed, multipart on S3 when larger than the part size). */
  putFile(key: string, localPath: string): Promise<ObjectInfo>;
  /** The whole object in memory. ArtifactMissingError when absent. */
  get(key: string): Promise<Buffer>;
  /**
   * Streams the object or a byte range of it. `end` past the object's end is clamped (S3 semantics);
   * `start` at or past the end of a non-empty range is a RangeError; `start === end` gives an empty stream.
   * ArtifactMissingError when absent.
   */
  getStream(key: string, range?: ByteRange): Promise<Readable>;
  /** Downloads to a local file (parent folders created, written atomically). ArtifactMissingError when absent. */
  getToFile(key: string, localPath: string): Promise<ObjectInfo>;
  /** Size of an object, or undefined when absent. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /**
   * Objects whose key starts with `prefix` (a raw string prefix, as in S3: `runs/a` also matches `runs/abc/x`),
   * in UTF-8 byte order, paginated (any number of keys).
   */
  list(prefix?: string): AsyncIterable<ObjectInfo>;
  /**
   * Create-only write of a small object: true when this call created `key`, false when an object was already
   * there (nothing is written then). Atomic where the backend allows it (local: link(2); S3: PutObject with
   * `If-None-Match: *`). Optional: without it, the manifest commit falls back to HEAD + put + read-back.
   */
  putIfAbsent?(key: string, body: Buffer | Uint8Array | string): Promise<boolean>;
  /** Deletes an object; absent is fine (idempotent). */
  delete(key: string): Promise<void>;
  /** Deletes every object under a non-empty prefix; returns how many were deleted. */
  deletePrefix(prefix: string): Promise<number>;
  /** Releases sockets (S3). The store must not be used afterwards. */
  close(): Promise<void>;
}

export type StoreLocation = { kind: 'local'; dir: string } | { kind: 's3'; bucket: string; prefix: string };

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses an artifact root: `s3://bucket[/prefix]`, `file:///abs/dir`, or a plain path (relative paths resolve
 * against `cwd`). Throws ConfigError('artifacts', ...) for anything else; credentials in the location
 * (`s3://KEY:SECRET@bucket`) are refused and never repeated in the message (redactUri).
 */
export function parseStoreUri(uriOrPath: string, cwd: string = process.cwd()): StoreLocation {
  const fail = (reason: string): never => {
    throw new ConfigError('artifacts', redactUri(`${JSON.stringify(uriOrPath)}: ${reason}`));
  };
  if (typeof uriOrPath !== 'string' || uriOrPath.trim() === '') return fail('empty artifact location');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(uriOrPath)?.[1]?.toLowerCase();
  if (scheme === 's3') {
    const rest = uriOrPath.slice('s3://'.length);
    if (/[?#]/.test(rest)) fail('query strings and fragments are not supported in s3:// URIs');
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    if (redactUri(`s3://${rest}`) !== `s3://${rest}`) {
      fail('credentials do not belong in the URI (use AWS_ACCESS_KEY_ID / AWS_PROFILE)');
    }
    const rawPrefix = slash < 0 ? '' : rest.slice(slash + 1);
    if (!BUCKET_NAME.test(bucket) || bucket.includes('..')) {
      fail(`invalid bucket name ${JSON.stringify(bucket)} (3-63 chars: lowercase letters, digits, '.', '-')`);
    }
    let prefix = '';
    try {
      prefix = folderPrefix(rawPrefix);
    } catch (err) {
      fail(`invalid prefix: ${(err as Error).message}`);
    }
    return { kind: 's3', bucket, prefix };
  }
  if (scheme === 'file') {
    let dir = '';
    try {
      dir = fileURLToPath(uriOrPath);
    } catch (err) {
      fail(`invalid file URI (use file:///absolute/path): ${redactUri((err as Error).message)}`);
    }
    return { kind: 'local', dir: path.resolve(dir) };
  }
  if (scheme !== undefined) return fail(`unsupported scheme '${scheme}://' (use s3://, file:// or a path)`);
  return { kind: 'local', dir: path.resolve(cwd, uriOrPath) };
}

/** The canonical URI of a location, always ending in '/' (except `s3://bucket/` with no prefix, which also does). */
export function formatStoreUri(location: StoreLocation): string {
  if (location.kind === 's3') return `s3://${location.bucket}/${location.prefix}`;
  const href = pathToFileURL(location.dir).href;
  return href.endsWith('/') ? href : `${href}/`;
}

export interface OpenStoreOptions {
  /** S3 client settings; anything not given comes from the standard AWS env vars / profile. */
  s3?: S3StoreOptions;
  /** Base for relative paths (default process.cwd()). */
  cwd?: string;
}

/**
 * Opens a store rooted at `uriOrPath`. An artifact's own URI is a valid root too:
 * `readManifest(openStore('s3://b/runs/r1/prepare-corpus/'), '')`.
 */
export function openStore(uriOrPath: string, opts: OpenStoreOptions = {}): ArtifactStore {
  const location = parseStoreUri(uriOrPath, opts.cwd);
  if (location.kind === 'local') return new LocalStore(location.dir);
  return new S3Store(location.bucket, location.prefix, opts.s3);
}

/** Validates a ByteRange (integers, 0 <= start <= end); throws RangeError. */
export function checkRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(
      `invalid byte range {start: ${start}, end: ${end}} (need integers, 0 <= start <= end)`,
    );
  }
}
