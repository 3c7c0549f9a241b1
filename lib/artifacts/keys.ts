/**
 * Artifact keys: '/'-separated relative paths, the same in every backend.
 * A key that could escape its prefix (a local directory or an S3 prefix) or confuse a store is refused
 * with InvalidKeyError before any I/O: `..`/`.` segments, absolute paths, empty segments (`a//b`),
 * backslashes, control characters, lone UTF-16 surrogates, more than 1024 UTF-8 bytes (the S3 limit).
 */
import { InvalidKeyError } from '../errors';

/** S3's limit on an object key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /\p{Cs}/u;

function check(value: string, what: 'key' | 'prefix'): void {
  if (typeof value !== 'string') throw new InvalidKeyError(String(value), `${what} must be a string`);
  if (CONTROL_CHARS.test(value)) throw new InvalidKeyError(value, 'control characters are not allowed');
  if (LONE_SURROGATE.test(value))
    throw new InvalidKeyError(value, 'not well-formed Unicode (lone surrogate)');
  if (value.includes('\\')) throw new InvalidKeyError(value, "backslashes are not allowed (use '/')");
  if (value.startsWith('/')) throw new InvalidKeyError(value, 'absolute paths are not allowed');
  if (Buffer.byteLength(value, 'utf8') > MAX_KEY_BYTES) {
    throw new InvalidKeyError(value, `longer than ${MAX_KEY_BYTES} UTF-8 bytes`);
  }
  const body = what === 'prefix' && value.endsWith('/') ? value.slice(0, -1) : value;
  if (body === '') {
    if (what === 'key' || value !== '') throw new InvalidKeyError(value, `empty ${what}`);
    return;
  }
  for (const segment of body.split('/')) {
    if (segment === '') throw new InvalidKeyError(value, "empty path segment ('//' or a trailing '/')");
    if (segment === '..' || segment === '.')
      throw new InvalidKeyError(value, `'${segment}' segments are not allowed`);
  }
}

/** Returns `key` unchanged when it is a valid object key, else throws InvalidKeyError. */
export function validateKey(key: string): string {
  check(key, 'key');
  return key;
}

/** True when `key` would pass validateKey. */
export function isValidKey(key: string): boolean {
  try {
    check(key, 'key');
    return true;
  } catch {
    return false;
  }
}

/**
 * Validates a listing/deletion prefix: '' (everything), a raw string prefix (`runs/a` also matches
 * `runs/abc`), or a folder prefix ending in '/'. Same character rules as keys.
 */
export function validatePrefix(prefix: string): string {
  check(prefix, 'prefix');
  return prefix;
}

/**
 * Normalizes a folder prefix: '' stays '', anything else gets exactly one trailing '/'.
 * `runs/r1/pretrain` and `runs/r1/pretrain/` both give `runs/r1/pretrain/`.
 */
export function folderPrefix(prefix: string): string {
  check(prefix, 'prefix');
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

function stripTrailingSlash(part: string): string {
  return part.endsWith('/') ? part.slice(0, -1) : part;
}

/**
 * Joins parts with '/' and validates the result as a key. Empty parts are skipped and one trailing '/'
 * of a part is dropped (so a folder prefix can be joined); a leading '/' or '..' anywhere is refused.
 * `joinKey('runs/r1/', 'pretrain', 'model.onnx')` → `runs/r1/pretrain/model.onnx`.
 */
export function joinKey(...parts: string[]): string {
  const kept = parts.filter((p) => p !== '').map(stripTrailingSlash);
  return validateKey(kept.join('/'));
}

/** Like joinKey but returns a folder prefix ending in '/' ('' when every part is empty). */
export function joinPrefix(...parts: string[]): string {
  const kept = parts.filter((p) => p !== '').map(stripTrailingSlash);
  if (kept.length === 0) return '';
  return `${validateKey(kept.join('/'))}/`;
}

/** The part of `key` below folder prefix `prefix`; throws InvalidKeyError when `key` is not under it. */
export function relativeKey(prefix: string, key: string): string {
  const folder = folderPrefix(prefix);
  if (!key.startsWith(folder) || key.length === folder.length) {
    throw new InvalidKeyError(key, `not under prefix ${JSON.stringify(folder)}`);
  }
  return validateKey(key.slice(folder.length));
}

/** Compares keys in S3 listing order (UTF-8 byte order, which differs from UTF-16 order above U+FFFF). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
