/**
 * Artifact-root preflight: check, before any stage runs, that an artifact root can be used, and fail fast
 * with a ConfigError naming the setting when it cannot. It never hangs (one overall time limit) and never
 * retries (a broken setting does not get better).
 *
 * Local roots are checked with single, bounded, non-recursive file-system calls: Node 20's
 * `mkdir(p, { recursive: true })` never settles on paths such as /proc/x and keeps every libuv thread busy,
 * so it is never called on an unchecked path here.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, realpath, stat, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  DeleteObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { ConfigError } from '../errors';
import { LOCAL_TEMP_MARK } from './local';
import { redactUri } from './redact';
import { ACCESS_ERRORS, createS3Client, type S3StoreOptions, type SdkError } from './s3';
import { formatStoreUri, parseStoreUri, type StoreLocation } from './store';

export interface CheckArtifactRootOptions {
  /** S3 client settings (else the standard AWS environment), as for openStore. */
  s3?: S3StoreOptions;
  /** Base for relative paths (default process.cwd()). */
  cwd?: string;
  /** Limit for the whole check (default 15 s). */
  timeoutMs?: number;
  /** Most folder levels walked up to find an existing ancestor, or created (default 64). */
  maxDepth?: number;
}

/** Folders whose file systems are kernel interfaces, not storage (/dev/shm, a tmpfs, is allowed). */
const PSEUDO_PREFIXES = ['/proc', '/sys', '/dev'];
const PSEUDO_ALLOWED = ['/dev/shm'];

/** statfs(2) f_type values of pseudo file systems (linux/magic.h). */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
  [0x62656570, 'configfs'],
  [0x6165676c, 'pstore'],
  [0xde5e81e4, 'efivarfs'],
  [0x42494e4d, 'binfmt_misc'],
  [0x65735543, 'fusectl'],
  [0x19800202, 'mqueue'],
  [0xf97cff8c, 'selinuxfs'],
  [0x6e736673, 'nsfs'],
]);

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function pseudoPrefix(p: string): string | undefined {
  if (PSEUDO_ALLOWED.some((a) => p === a || p.startsWith(`${a}/`))) return undefined;
  return PSEUDO_PREFIXES.find((prefix) => p === prefix || p.startsWith(`${prefix}/`));
}

/** Words for a failed file-system call on `p` (exported for tests). */
export function describeFsError(err: unknown, p: string): string {
  const code = errCode(err);
  switch (code) {
    case 'EROFS':
      return `${p} is on a read-only file system`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied on ${p}`;
    case 'ENOSPC':
      return `no space left on the device holding ${p}`;
    case 'EDQUOT':
      return `disk quota exceeded on ${p}`;
    case 'ENOTDIR':
      return `${p} is under a regular file`;
    case 'ENAMETOOLONG':
      return `${p}: name too long`;
    case 'ELOOP':
      return `${p}: too many levels of symbolic links`;
    default:
      return `${p}: ${(err as Error)?.message ?? String(err)}`;
  }
}

async function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function checkLocalRoot(dir: string, fail: (reason: string) => never, maxDepth: number): Promise<void> {
  const lexical = pseudoPrefix(dir);
  if (lexical) fail(`${dir} is under ${lexical}, a pseudo file system, not storage`);
  // Walk up to the nearest existing ancestor, one stat at a time.
  const missing: string[] = [];
  let current = dir;
  for (let depth = 0; ; depth++) {
    if (depth > maxDepth) fail(`${dir}: no existing folder within ${maxDepth} levels above it`);
    let info: Awaited<ReturnType<typeof stat>> | undefined;
    try {
      info = await stat(current);
    } catch (err) {
      const code = errCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') fail(describeFsError(err, current));
    }
    if (info) {
      if (!info.isDirectory()) {
        if (current === dir)
          fail(`${dir} exists and is ${info.isFile() ? 'a regular file' : 'not a folder'}`);
        fail(`${dir} is under a regular file (${current})`);
      }
      break;
    }
    missing.unshift(current);
    const parent = path.dirname(current);
    if (parent === current) fail(`${dir}: no existing folder above it`);
    current = parent;
  }
  // The existing ancestor, symlinks resolved, must be real storage.
  let real = current;
  try {
    real = await realpath(current);
  } catch (err) {
    fail(describeFsError(err, current));
  }
  const viaLink = pseudoPrefix(real);
  if (viaLink) fail(`${dir} resolves to ${real}, under ${viaLink}, a pseudo file system, not storage`);
  try {
    const fs = await statfs(real);
    const name = PSEUDO_FS.get(Number(fs.type));
    if (name) fail(`${dir} is on a ${name} file system (a kernel interface, not storage)`);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    // statfs unsupported here: the path checks above must do
  }
  // Create the missing folders one level at a time.
  for (const folder of missing) {
    try {
      await mkdir(folder);
    } catch (err) {
      if (errCode(err) !== 'EEXIST') fail(`cannot create ${folder}: ${describeFsError(err, folder)}`);
      const info = await stat(folder).catch(() => undefined);
      if (!info?.isDirectory()) fail(`${folder} exists and is not a folder`);
    }
  }
  // Prove writability (catches read-only mounts even as root).
  const probe = path.join(dir, `${LOCAL_TEMP_MARK}preflight-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(probe, 'wx');
    try {
      await fh.writeFile('cotmae preflight\n');
    } finally {
      await fh.close();
    }
  } catch (err) {
    await unlink(probe).catch(() => undefined);
    fail(`cannot write in ${dir}: ${describeFsError(err, dir)}`);
  }
  try {
    await unlink(probe);
  } catch (err) {
    fail(`cannot delete files in ${dir}: ${describeFsError(err, dir)}`);
  }
}

function describeS3Error(err: unknown, bucket: string, where: string, step: string): string {
  const e = err as SdkError;
  const name = e?.name ?? '';
  const status = e?.$metadata?.httpStatusCode;
  if (name === 'NoSuchBucket' || (step === 'HeadBucket' && (name === 'NotFound' || status === 404))) {
    return `bucket '${bucket}' does not exist at ${where}`;
  }
  if (ACCESS_ERRORS.has(name) || status === 403) {
    return `${step} denied (${name || status}) at ${where}: check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and that they may list, read, write and delete there`;
  }
  if (name === 'CredentialsProviderError' || /credential/i.test(e?.message ?? '')) {
    return `no usable AWS credentials for ${where}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE`;
  }
  if (/region is missing/i.test(e?.message ?? '')) return `no AWS region for ${where}: set AWS_REGION`;
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
    return `bucket '${bucket}' is in another region than the one configured (${where}): set AWS_REGION`;
  }
  if (name === 'AbortError' || name === 'TimeoutError') return `${step}: no answer from ${where} in time`;
  const code = e?.code ?? (err as { cause?: { code?: string } })?.cause?.code;
  if (code && /^E[A-Z]+$/.test(code)) return `${step}: cannot reach ${where} (${code})`;
  return `${step} failed at ${where}: ${name || 'error'}: ${e?.message ?? String(err)}`;
}

async function checkS3Root(
  location: Extract<StoreLocation, { kind: 's3' }>,
  fail: (reason: string) => never,
  opts: CheckArtifactRootOptions,
  signal: AbortSignal,
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  let client: ReturnType<typeof createS3Client>;
  try {
    client = createS3Client({
      ...opts.s3,
      maxAttempts: 1, // never retry: a broken setting does not get better
      connectionTimeoutMs: Math.min(opts.s3?.connectionTimeoutMs ?? timeoutMs, timeoutMs),
      socketTimeoutMs: Math.min(opts.s3?.socketTimeoutMs ?? timeoutMs, timeoutMs),
    });
  } catch (err) {
    fail((err as Error).message);
  }
  const endpoint = opts.s3?.endpoint ?? opts.s3?.env?.AWS_ENDPOINT_URL_S3 ?? opts.s3?.env?.AWS_ENDPOINT_URL;
  const where = `${formatStoreUri(location)}${endpoint ? ` (endpoint ${endpoint})` : ''}`;
  const { bucket, prefix } = location;
  const step = async (name: string, run: () => Promise<unknown>) => {
    try {
      await run();
    } catch (err) {
      fail(describeS3Error(err, bucket, where, name));
    }
  };
  try {
    await step('HeadBucket', () =>
      client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal }),
    );
    await step('ListObjectsV2', () =>
      client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 }), {
        abortSignal: signal,
      }),
    );
    const Key = `${prefix}.cotmae-preflight-${randomBytes(6).toString('hex')}`;
    await step('PutObject', () =>
      client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'cotmae preflight\n' }), {
        abortSignal: signal,
      }),
    );
    await step('DeleteObject', () =>
      client.send(new DeleteObjectCommand({ Bucket: bucket, Key }), { abortSignal: signal }),
    );
  } finally {
    client.destroy();
  }
}

/**
 * Checks that `uri` (an artifact root: `s3://bucket/prefix`, `file:///dir` or a path) is usable and returns
 * its canonical URI. Throws ConfigError on `key` (the setting it came from) with the reason: malformed;
 * local: under /proc, /sys or /dev (or on such a file system), under a regular file, itself a regular file,
 * a folder that cannot be created, or not writable (read-only mount, permissions, full); S3: no such bucket,
 * access denied, no credentials or region, endpoint unreachable; either: no answer within `timeoutMs`.
 * Missing local folders are created, one level at a time; a probe file is written and removed (S3: a probe
 * object `<prefix>.cotmae-preflight-*`). Credentials in `uri` are refused and never echoed.
 */
export async function checkArtifactRoot(
  uri: string,
  key = 'artifacts',
  opts: CheckArtifactRootOptions = {},
): Promise<string> {
  let location: StoreLocation;
  try {
    location = parseStoreUri(uri, opts.cwd);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(key, err.reason);
    throw err;
  }
  const resolved = formatStoreUri(location);
  const fail = (reason: string): never => {
    throw new ConfigError(key, redactUri(reason));
  };
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const controller = new AbortController();
  const work =
    location.kind === 'local'
      ? checkLocalRoot(location.dir, fail, opts.maxDepth ?? 64)
      : checkS3Root(location, fail, opts, controller.signal);
  try {
    await withTimeout(work, timeoutMs, () => {
      controller.abort();
      return new ConfigError(
        key,
        redactUri(`${resolved}: no answer within ${timeoutMs} ms (a hung mount or an unreachable endpoint?)`),
      );
    });
  } catch (err) {
    if (err instanceof ConfigError) throw err.key === key ? err : new ConfigError(key, err.message);
    throw new ConfigError(key, redactUri(`${resolved}: ${(err as Error)?.message ?? String(err)}`));
  }
  return resolved;
}
