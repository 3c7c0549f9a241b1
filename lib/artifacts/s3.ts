/**
 * S3 backend (AWS S3 or any S3-compatible server: SeaweedFS, MinIO, moto, Ceph RGW...).
 *
 * - Writes: small buffers go in one PutObject; streams, files and large buffers go through lib-storage's
 *   Upload, which cuts the body into `partSizeBytes` parts held in memory (so each part can be retried)
 *   with at most `queueSize` parts in flight (memory <= partSize * queueSize per upload), and aborts the
 *   multipart upload on failure (no orphaned parts, no half object: S3 publishes an object atomically).
 * - Reads: GetObject, with a `Range` header for ranged reads; the byte count is checked against
 *   Content-Length, so a truncated body is an error, not a short file.
 * - Retries: the SDK's standard retry strategy (exponential backoff with full jitter, base 100 ms, cap 20 s;
 *   throttling, 5xx, timeouts and connection errors) with `maxAttempts` (default 5; AWS_MAX_ATTEMPTS or the
 *   option override it). A body stream that breaks after the headers is not retried by the SDK: the caller
 *   (an activity, retried by Temporal) starts over.
 * - Configuration: explicit options, else the standard AWS environment: AWS_ENDPOINT_URL_S3 /
 *   AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION, credentials from the SDK's default provider chain
 *   (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and ~/.aws files, SSO,
 *   web identity, container/instance metadata), and S3_FORCE_PATH_STYLE. Credentials are never logged:
 *   describe() and every error message name the endpoint, region and bucket only.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  paginateListObjectsV2,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ArtifactMissingError, ConfigError, InvalidKeyError } from '../errors';
import { folderPrefix, validateKey, validatePrefix } from './keys';
import { redactUri } from './redact';
import type { ArtifactStore, ByteRange, ObjectInfo, PutBody } from './store';
import { checkRange } from './store';

const MIB = 1024 * 1024;
/** S3's smallest part (all parts but the last). */
export const MIN_PART_SIZE = 5 * MIB;
export const DEFAULT_PART_SIZE = 16 * MIB;
export const DEFAULT_QUEUE_SIZE = 4;
export const DEFAULT_MAX_ATTEMPTS = 5;

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3StoreOptions {
  /** e.g. http://127.0.0.1:8333; default AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, else AWS itself. */
  endpoint?: string;
  /** Default AWS_REGION, AWS_DEFAULT_REGION, the profile's region; 'us-east-1' when an endpoint is set. */
  region?: string;
  /** Default: the SDK's provider chain (env vars, AWS_PROFILE / ~/.aws, SSO, instance roles). */
  credentials?: S3Credentials;
  /** A named profile from ~/.aws/config and ~/.aws/credentials (like AWS_PROFILE, for this client only). */
  profile?: string;
  /** Path-style URLs (http://host/bucket/key). Default S3_FORCE_PATH_STYLE, else true iff an endpoint is set. */
  forcePathStyle?: boolean;
  /** Attempts per request, first included. Default AWS_MAX_ATTEMPTS, else 5. */
  maxAttempts?: number;
  /** Multipart part size in bytes (>= 5 MiB, default 16 MiB: objects up to 160 GiB at 10,000 parts). */
  partSizeBytes?: number;
  /** Parts uploaded concurrently per upload (default 4). */
  queueSize?: number;
  /** TCP connect timeout (default 10 s). */
  connectionTimeoutMs?: number;
  /** A socket idle longer than this fails the request, which is then retried (default 120 s). */
  socketTimeoutMs?: number;
  /** Use this client instead of building one (close() then leaves it open). */
  client?: S3Client;
  /** Environment to read settings from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The settings a client was built with, minus credentials: safe to log. */
export interface S3Settings {
  endpoint?: string;
  region?: string;
  forcePathStyle: boolean;
  maxAttempts?: number;
  credentials: 'explicit' | 'default provider chain';
  profile?: string;
}

function parseBool(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new ConfigError(name, `expected true/false, got ${JSON.stringify(value)}`);
}

function positiveInt(name: string, value: number | string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new ConfigError(name, `expected a positive integer, got ${value}`);
  return n;
}

/** Resolves endpoint, region, path style and retries from options and env (see S3StoreOptions). */
export function resolveS3Settings(opts: S3StoreOptions = {}): S3Settings {
  const env = opts.env ?? process.env;
  const endpoint = opts.endpoint ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
  if (endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new ConfigError('AWS_ENDPOINT_URL', redactUri(`not an http(s) URL: ${JSON.stringify(endpoint)}`));
    }
    if (url.username || url.password) {
      throw new ConfigError(
        'AWS_ENDPOINT_URL',
        'must not embed credentials (use AWS_ACCESS_KEY_ID / AWS_PROFILE)',
      );
    }
  }
  const region =
    opts.region ??
    (env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint !== undefined ? 'us-east-1' : undefined));
  const forcePathStyle =
    opts.forcePathStyle ??
    (env.S3_FORCE_PATH_STYLE !== undefined
      ? parseBool('S3_FORCE_PATH_STYLE', env.S3_FORCE_PATH_STYLE)
      : endpoint !== undefined);
  let maxAttempts: number | undefined;
  if (opts.maxAttempts !== undefined) maxAttempts = positiveInt('maxAttempts', opts.maxAttempts);
  else if (!env.AWS_MAX_ATTEMPTS) maxAttempts = DEFAULT_MAX_ATTEMPTS; // else the SDK reads AWS_MAX_ATTEMPTS
  return {
    endpoint,
    region,
    forcePathStyle,
    maxAttempts,
    credentials: opts.credentials ? 'explicit' : 'default provider chain',
    profile: opts.profile ?? (env.AWS_PROFILE || undefined),
  };
}

/** Builds an S3Client from options + env (see S3StoreOptions); safe defaults for S3-compatible servers. */
export function createS3Client(opts: S3StoreOptions = {}): S3Client {
  const settings = resolveS3Settings(opts);
  const config: S3ClientConfig = {
    forcePathStyle: settings.forcePathStyle,
    // Checksums only where the API requires them (DeleteObjects...). The SDK default (WHEN_SUPPORTED) sends
    // stream bodies aws-chunked with a trailing CRC, which some S3-compatible servers store verbatim, chunk
    // framing included, without any error (measured with s3rver; older MinIO/SeaweedFS/Ceph releases had
    // similar bugs); and it validates response CRCs, which servers compute inconsistently for multipart and
    // ranged reads. Integrity is checked end to end instead: every artifact file's sha256 and size are in its
    // manifest (manifest.ts), and the commit re-checks sizes on the server.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: opts.connectionTimeoutMs ?? 10_000,
      socketTimeout: opts.socketTimeoutMs ?? 120_000,
    },
  };
  if (settings.endpoint !== undefined) config.endpoint = settings.endpoint;
  if (settings.region !== undefined) config.region = settings.region;
  if (settings.maxAttempts !== undefined) config.maxAttempts = settings.maxAttempts;
  if (opts.credentials) config.credentials = { ...opts.credentials };
  if (opts.profile !== undefined) config.profile = opts.profile;
  return new S3Client(config);
}

/** The fields of an AWS SDK error this module and the root preflight read. */
export interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Error names that mean the credentials or the policy are wrong (a config problem, not worth a retry). */
export const ACCESS_ERRORS: ReadonlySet<string> = new Set([
  'AccessDenied',
  'Forbidden',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'AllAccessDisabled',
]);

export class S3Store implements ArtifactStore {
  readonly kind = 's3' as const;
  readonly rootUri: string;
  readonly bucket: string;
  /** The store's key prefix in the bucket: '' or ending in '/'. */
  readonly prefix: string;
  readonly client: S3Client;
  readonly settings: S3Settings;
  private readonly ownsClient: boolean;
  private readonly partSize: number;
  private readonly queueSize: number;
  /** Whether the server honours `If-None-Match: *` on PutObject (undefined until a conditional put tells). */
  private conditionalPuts: boolean | undefined;

  constructor(bucket: string, prefix = '', opts: S3StoreOptions = {}) {
    this.bucket = bucket;
    this.prefix = folderPrefix(prefix);
    this.settings = resolveS3Settings(opts);
    this.client = opts.client ?? createS3Client(opts);
    this.ownsClient = opts.client === undefined;
    this.partSize = opts.partSizeBytes ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART_SIZE) {
      throw new ConfigError(
        'partSizeBytes',
        `must be an integer >= ${MIN_PART_SIZE} (5 MiB), got ${this.partSize}`,
      );
    }
    this.queueSize = positiveInt('queueSize', opts.queueSize ?? DEFAULT_QUEUE_SIZE);
    this.rootUri = `s3://${bucket}/${this.prefix}`;
  }

  /** Where this store points, without credentials: safe for logs and error messages. */
  describe(): string {
    const s = this.settings;
    return redactUri(
      `${this.rootUri} (endpoint ${s.endpoint ?? 'AWS default'}, region ${s.region ?? 'from profile'}, ${
        s.forcePathStyle ? 'path-style' : 'virtual-hosted'
      } URLs)`,
    );
  }

  /** Whether the server honours conditional puts: undefined until putIfAbsent() found out. */
  get conditionalPutSupport(): boolean | undefined {
    return this.conditionalPuts;
  }

  uri(key: string): string {
    validatePrefix(key);
    return `${this.rootUri}${key}`;
  }

  private objectKey(key: string): string {
    return this.prefix + validateKey(key);
  }

  async put(key: string, body: PutBody): Promise<ObjectInfo> {
    const Key = this.objectKey(key);
    if (!(body instanceof Readable)) {
      const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      if (data.length <= this.partSize) {
        await this.send(key, () =>
          this.client.send(
            new PutObjectCommand({ Bucket: this.bucket, Key, Body: data, ContentLength: data.length }),
          ),
        );
        return { key, bytes: data.length };
      }
      return this.upload(key, Key, Readable.from([data]));
    }
    return this.upload(key, Key, body);
  }

  /**
   * Create-only write (one PutObject, so at most 5 GiB): HEAD first (cheap, and catches servers that ignore the
   * condition), then PutObject with `If-None-Match: *`: 412 PreconditionFailed means another writer was first;
   * 409 ConditionalRequestConflict (a concurrent conditional write in flight) is retried a few times. A server
   * that answers 501 NotImplemented gets, from then on, a plain put followed by a read-back check (which
   * narrows, but cannot close, the window in which two writers both succeed).
   */
  async putIfAbsent(key: string, body: Buffer | Uint8Array | string): Promise<boolean> {
    const Key = this.objectKey(key);
    const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
    if (await this.head(key)) return false;
    if (this.conditionalPuts !== false) {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key,
              Body: data,
              ContentLength: data.length,
              IfNoneMatch: '*',
            }),
          );
          this.conditionalPuts = true;
          return true;
        } catch (err) {
          const e = err as SdkError;
          const status = e?.$metadata?.httpStatusCode;
          if (status === 412 || e?.name === 'PreconditionFailed') {
            this.conditionalPuts = true;
            // Our own earlier try (whose response was lost, then retried by the SDK) may have created it.
            return this.holds(key, data);
          }
          if ((status === 409 || e?.name === 'ConditionalRequestConflict') && attempt < 5) {
            await delay(50 * 2 ** attempt);
            continue;
          }
          if (status === 501 || e?.name === 'NotImplemented') {
            this.conditionalPuts = false;
            break;
          }
          throw this.mapError(err, key);
        }
      }
    }
    if (await this.head(key)) return false;
    await this.put(key, data);
    return this.holds(key, data);
  }

  /** True when `key` holds exactly `data`. */
  private async holds(key: string, data: Buffer): Promise<boolean> {
    try {
      return (await this.get(key)).equals(data);
    } catch (err) {
      if (err instanceof ArtifactMissingError) return false;
      throw err;
    }
  }

  async putFile(key: string, localPath: string): Promise<ObjectInfo> {
    const Key = this.objectKey(key);
    const info = await stat(localPath);
    if (!info.isFile()) throw new Error(`putFile: ${localPath} is not a regular file`);
    return this.upload(key, Key, createReadStream(localPath));
  }

  /** Streams `source` through a byte counter into a (multipart when large) upload. */
  private async upload(key: string, Key: string, source: Readable): Promise<ObjectInfo> {
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    // A source error destroys the counter with the same error, which fails the upload (and aborts the
    // multipart upload); upload.done() then rejects with that error.
    const piping = pipeline(source, counter).catch(() => undefined);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: counter },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    try {
      await this.send(key, () => upload.done());
    } catch (err) {
      // The server side failed: stop reading the source (nobody consumes the counter any more).
      counter.destroy();
      source.destroy();
      await piping;
      throw err;
    }
    await piping;
    return { key, bytes };
  }

  async get(key: string): Promise<Buffer> {
    const Key = this.objectKey(key);
    const res = await this.send(key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key })),
    );
    if (!res.Body) throw new Error(`GetObject ${this.uri(key)} returned no body`);
    const bytes = await res.Body.transformToByteArray();
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.checkLength(key, res.ContentLength, data.length);
    return data;
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    const Key = this.objectKey(key);
    if (range) {
      checkRange(range);
      if (range.start === range.end) {
        // S3 cannot express an empty range; keep the missing-key semantics.
        if (!(await this.head(key))) throw new ArtifactMissingError(this.uri(key));
        return Readable.from([]);
      }
    }
    const Range = range ? `bytes=${range.start}-${range.end - 1}` : undefined;
    const res = await this.send(key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range })),
    );
    if (!res.Body) throw new Error(`GetObject ${this.uri(key)} returned no body`);
    return res.Body as Readable;
  }

  async getToFile(key: string, localPath: string): Promise<ObjectInfo> {
    const Key = this.objectKey(key);
    const dest = path.resolve(localPath);
    const res = await this.send(key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key })),
    );
    if (!res.Body) throw new Error(`GetObject ${this.uri(key)} returned no body`);
    const body = res.Body as Readable;
    await mkdir(path.dirname(dest), { recursive: true });
    const tmp = path.join(path.dirname(dest), `.tmp-cotmae-${randomBytes(8).toString('hex')}`);
    let bytes = 0;
    try {
      await pipeline(
        body,
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            bytes += chunk.length;
            callback(null, chunk);
          },
        }),
        createWriteStream(tmp, { flags: 'wx' }),
      );
      this.checkLength(key, res.ContentLength, bytes);
      await rename(tmp, dest);
    } catch (err) {
      body.destroy();
      await rm(tmp, { force: true });
      throw err;
    }
    return { key, bytes };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const Key = this.objectKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { key, bytes: res.ContentLength ?? 0 };
    } catch (err) {
      const e = err as SdkError;
      if (e.name === 'NotFound' || e.name === 'NoSuchKey') return undefined;
      throw this.mapError(err, key);
    }
  }

  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    validatePrefix(prefix);
    const pages = paginateListObjectsV2(
      { client: this.client, pageSize: 1000 },
      { Bucket: this.bucket, Prefix: this.prefix + prefix },
    );
    try {
      for await (const page of pages) {
        for (const obj of page.Contents ?? []) {
          if (obj.Key === undefined || !obj.Key.startsWith(this.prefix)) continue;
          yield { key: obj.Key.slice(this.prefix.length), bytes: obj.Size ?? 0 };
        }
      }
    } catch (err) {
      throw this.mapError(err, prefix);
    }
  }

  async delete(key: string): Promise<void> {
    const Key = this.objectKey(key);
    await this.send(key, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })));
  }

  async deletePrefix(prefix: string): Promise<number> {
    validatePrefix(prefix);
    if (prefix === '') throw new InvalidKeyError(prefix, 'refusing to delete the whole store (empty prefix)');
    let batch: string[] = [];
    let deleted = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      deleted += await this.deleteBatch(batch);
      batch = [];
    };
    for await (const { key } of this.list(prefix)) {
      batch.push(key);
      if (batch.length === 1000) await flush();
    }
    await flush();
    return deleted;
  }

  private async deleteBatch(keys: string[]): Promise<number> {
    try {
      const res = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.map((k) => ({ Key: this.prefix + k })), Quiet: true },
        }),
      );
      const errors = res.Errors ?? [];
      if (errors.length > 0) {
        const first = errors[0];
        throw new Error(
          `DeleteObjects under ${this.rootUri}: ${errors.length} of ${keys.length} failed, e.g. ${first?.Key}: ${first?.Code} ${first?.Message}`,
        );
      }
      return keys.length;
    } catch (err) {
      // Some S3-compatible servers lack the batch API: fall back to one DeleteObject per key.
      if ((err as SdkError).name === 'NotImplemented') {
        for (const k of keys) await this.delete(k);
        return keys.length;
      }
      throw this.mapError(err, keys[0] ?? '');
    }
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }

  private checkLength(key: string, expected: number | undefined, got: number): void {
    if (expected !== undefined && expected !== got) {
      throw new Error(
        `GetObject ${this.uri(key)}: body has ${got} bytes, Content-Length said ${expected} (truncated?)`,
      );
    }
  }

  private async send<T>(key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.mapError(err, key);
    }
  }

  /** Maps SDK errors to the pipeline's non-retryable errors where retrying cannot help; others pass through. */
  private mapError(err: unknown, key: string): unknown {
    const e = err as SdkError;
    const status = e?.$metadata?.httpStatusCode;
    const name = e?.name ?? '';
    if (name === 'NoSuchKey' || (name === 'NotFound' && status === 404))
      return new ArtifactMissingError(this.uri(key));
    if (name === 'NoSuchBucket') {
      return new ConfigError('artifacts', `bucket '${this.bucket}' does not exist at ${this.describe()}`);
    }
    if (name === 'InvalidRange' || status === 416) {
      return new RangeError(`invalid range for ${this.uri(key)} (start past the end of the object)`);
    }
    if (ACCESS_ERRORS.has(name) || status === 403) {
      return new ConfigError(
        'artifacts',
        `access denied (${name || status}) to ${this.uri(key)} at ${this.describe()}: check the credentials ` +
          '(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and that they may read, write, list and delete there',
      );
    }
    if (name === 'CredentialsProviderError') {
      return new ConfigError(
        'artifacts',
        `no AWS credentials for ${this.describe()}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE`,
      );
    }
    if (typeof e?.message === 'string' && /region is missing/i.test(e.message)) {
      return new ConfigError('artifacts', `no AWS region for ${this.describe()}: set AWS_REGION`);
    }
    return err;
  }
}
