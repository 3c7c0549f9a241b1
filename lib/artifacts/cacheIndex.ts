/**
 * The cross-run cache index: `cache/<cacheKey>.json` at the root of a store points at a committed artifact
 * made with that cache key, whichever run made it. A stage that computes its cache key can then reuse another
 * run's output instead of recomputing it.
 *
 * Entries are hints, never trusted on their own: lookupCacheEntry() returns an entry only when the artifact it
 * points at is still committed with that cache key (optionally with its file sizes checked), and removes a
 * stale entry. Writes are plain puts: when two runs record the same key, the last one wins, and both point at
 * valid artifacts.
 */
import { ArtifactCorruptError, ArtifactMissingError, ConfigError, InvalidKeyError } from '../errors';
import { folderPrefix, isValidKey } from './keys';
import { type ReadManifestResult, readManifest, SHA256_HEX } from './manifest';
import { redactUri } from './redact';
import type { ArtifactStore } from './store';
import { checkArtifactSizes, verifyArtifact } from './verify';
import type { CommittedArtifact } from './writer';

/** The folder of the cache index, at the root of the store. */
export const CACHE_INDEX_PREFIX = 'cache/';

export interface CacheEntry {
  /** The cache key (64 hex). */
  key: string;
  stage: string;
  /** The artifact's folder, relative to the store root ('' or ending in '/'). */
  prefix: string;
  /** The artifact's URI when the entry was written (informational; `prefix` is what is followed). */
  uri: string;
  manifestSha256: string;
  contentDigest: string;
  runId: string;
  /** The artifact's manifest createdAt. */
  createdAt: string;
}

/** The store key of a cache key's entry: `cache/<key>.json`. ConfigError unless `key` is 64 lowercase hex. */
export function cacheEntryKey(key: string): string {
  if (typeof key !== 'string' || !SHA256_HEX.test(key))
    throw new ConfigError('cacheKey', `${JSON.stringify(key)} is not 64 lowercase hex digits`);
  return `${CACHE_INDEX_PREFIX}${key}.json`;
}

function entryOf(
  read: Pick<ReadManifestResult, 'prefix' | 'uri' | 'manifestSha256' | 'contentDigest' | 'manifest'>,
): CacheEntry {
  const m = read.manifest;
  return {
    key: m.cacheKey,
    stage: m.stage,
    prefix: read.prefix,
    uri: redactUri(read.uri),
    manifestSha256: read.manifestSha256,
    contentDigest: read.contentDigest,
    runId: m.runId,
    createdAt: m.createdAt,
  };
}

function parseEntry(body: Buffer, key: string): CacheEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const e = value as Record<string, unknown> | null;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return undefined;
  for (const k of [
    'key',
    'stage',
    'prefix',
    'uri',
    'manifestSha256',
    'contentDigest',
    'runId',
    'createdAt',
  ]) {
    if (typeof e[k] !== 'string') return undefined;
  }
  const prefix = e.prefix as string;
  if (e.key !== key) return undefined;
  if (prefix !== '' && (!prefix.endsWith('/') || !isValidKey(prefix.slice(0, -1)))) return undefined;
  return e as unknown as CacheEntry;
}

/**
 * Records `committed` (from ArtifactWriter.commit() or readManifest(), on this same store) in the index
 * under its manifest's cache key; returns the entry written.
 */
export async function recordCacheEntry(
  store: ArtifactStore,
  committed: CommittedArtifact | ReadManifestResult,
): Promise<CacheEntry> {
  const prefix = folderPrefix(committed.prefix);
  if (store.uri(prefix) !== committed.uri) {
    throw new InvalidKeyError(
      prefix,
      `artifact ${redactUri(committed.uri)} is not in the store at ${redactUri(store.rootUri)} (record it in the store it was committed to)`,
    );
  }
  const entry = entryOf({ ...committed, prefix });
  await store.put(cacheEntryKey(entry.key), `${JSON.stringify(entry, null, 2)}\n`);
  return entry;
}

export interface LookupCacheOptions {
  /**
   * Also check the artifact's files before trusting the entry: 'sizes' (quick: one HEAD per file, no download)
   * or 'full' (sha256 of every file). A failed check makes the entry stale.
   */
  verify?: 'sizes' | 'full';
  /** Files checked at once when verifying (default 4). */
  concurrency?: number;
}

/** Deletes the entry unless it changed since it was read (another run may just have recorded a good one). */
async function removeStale(store: ArtifactStore, entryKey: string, seen: Buffer): Promise<void> {
  try {
    const now = await store.get(entryKey);
    if (now.equals(seen)) await store.delete(entryKey);
  } catch {
    // best effort: already gone, or the store is unreachable (the next lookup tries again)
  }
}

/**
 * The index entry for `key`, when the artifact it points at is still committed with that cache key (and, with
 * `verify`, its files check out). Otherwise undefined, and a stale entry (unreadable, pointing at a missing,
 * corrupt, overwritten or differently keyed artifact) is removed. An entry whose artifact was re-committed with
 * the same key is refreshed (new manifestSha256/contentDigest). Store errors (network, access) pass through.
 */
export async function lookupCacheEntry(
  store: ArtifactStore,
  key: string,
  opts: LookupCacheOptions = {},
): Promise<CacheEntry | undefined> {
  const entryKey = cacheEntryKey(key);
  let body: Buffer;
  try {
    body = await store.get(entryKey);
  } catch (err) {
    if (err instanceof ArtifactMissingError) return undefined;
    throw err;
  }
  const entry = parseEntry(body, key);
  if (!entry) {
    await removeStale(store, entryKey, body);
    return undefined;
  }
  let read: ReadManifestResult;
  try {
    read = await readManifest(store, entry.prefix);
    if (read.manifest.cacheKey !== key) throw new ArtifactCorruptError(read.uri, 'cache key changed');
    if (opts.verify === 'full') await verifyArtifact(store, read.prefix, { concurrency: opts.concurrency });
    else if (opts.verify === 'sizes') await checkArtifactSizes(store, read, opts.concurrency);
  } catch (err) {
    if (err instanceof ArtifactMissingError || err instanceof ArtifactCorruptError) {
      await removeStale(store, entryKey, body);
      return undefined;
    }
    throw err;
  }
  const current = entryOf(read);
  if (current.manifestSha256 !== entry.manifestSha256 || current.contentDigest !== entry.contentDigest) {
    await store.put(entryKey, `${JSON.stringify(current, null, 2)}\n`).catch(() => undefined);
  }
  return current;
}
