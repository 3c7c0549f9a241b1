/**
 * Checked reuse: before a stage reuses the artifact already committed in its output folder, it checks that
 * the artifact was made with the cache key this run expects. A committed artifact with another key (other
 * inputs, config or code) is stale: reusing it would silently mix runs, so the caller gets a
 * StaleArtifactError that says what differs and how to proceed.
 */
import { ArtifactMissingError, StaleArtifactError } from '../errors';
import { canonicalJson } from './cacheKey';
import { type Manifest, type ReadManifestResult, readManifest } from './manifest';
import { redactUri } from './redact';
import type { ArtifactStore } from './store';
import { checkArtifactSizes, verifyArtifact } from './verify';

/** What the caller expected the artifact to be made from (all optional: only what is given is compared). */
export interface ExpectedArtifact {
  /** The stage recorded in the manifest (compared; also the default for the `--force <stage>` hint). */
  stage?: string;
  /** Input artifacts by role; compared by `manifestSha256`. */
  inputs?: readonly { name: string; manifestSha256: string; uri?: string }[];
  /** The stage's resolved config; compared key by key at the top level. */
  config?: unknown;
  /** The code version (e.g. getCodeVersion(), plus a sourceDigest); compared key by key at the top level. */
  code?: unknown;
}

export interface CheckCommittedOptions {
  /** Lets a mismatch say what differs (top-level keys of inputs/config/code). */
  expected?: ExpectedArtifact;
  /**
   * On a match, also check the files: 'sizes' (one HEAD per file) or 'full' (sha256 of every file).
   * A failed check throws ArtifactCorruptError. Default: the manifest only.
   */
  verify?: 'sizes' | 'full';
  /** Files checked at once when verifying (default 4). */
  concurrency?: number;
  /**
   * The stage name the StaleArtifactError's `--force <stage>` hint names (default: `expected.stage`, else the
   * recorded manifest's stage). E.g. 'prepare-corpus' for a shard folder whose manifests say
   * 'prepare-corpus-shard'.
   */
  forceStage?: string;
}

export type CommittedCheck =
  | { state: 'absent' }
  | { state: 'match'; read: ReadManifestResult }
  | {
      state: 'mismatch';
      read: ReadManifestResult;
      /** The cache key recorded in the committed manifest. */
      recordedKey: string;
      /** Differing top-level keys, e.g. `config.max_passage_tokens`, `inputs.corpus`, `code.gitCommit`. */
      differences: string[];
      /** Ready to throw: names the URI, both keys, the differences and how to proceed. */
      error: StaleArtifactError;
    };

function canonical(value: unknown): string {
  try {
    return canonicalJson(value);
  } catch {
    return JSON.stringify(value) ?? 'undefined';
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Top-level keys (as `<label>.<key>`) whose values differ; `<label>` alone when either side is not an object. */
function topLevelDifferences(label: string, recorded: unknown, expected: unknown): string[] {
  if (isPlainObject(recorded) && isPlainObject(expected)) {
    const keys = [...new Set([...Object.keys(recorded), ...Object.keys(expected)])].sort();
    return keys.filter((k) => canonical(recorded[k]) !== canonical(expected[k])).map((k) => `${label}.${k}`);
  }
  return canonical(recorded ?? null) === canonical(expected ?? null) ? [] : [label];
}

/**
 * What differs between a committed manifest and what the caller expected: `stage`, `inputs.<name>` (digest
 * differs, or the input is on one side only), `config.<key>`, `code.<key>`. Only the parts given in
 * `expected` are compared.
 */
export function manifestDifferences(recorded: Manifest, expected: ExpectedArtifact): string[] {
  const out: string[] = [];
  if (expected.stage !== undefined && expected.stage !== recorded.stage) out.push('stage');
  if (expected.inputs !== undefined) {
    const was = new Map(recorded.inputs.map((i) => [i.name, i.manifestSha256]));
    const now = new Map(expected.inputs.map((i) => [i.name, i.manifestSha256]));
    const names = [...new Set([...was.keys(), ...now.keys()])].sort();
    for (const name of names) if (was.get(name) !== now.get(name)) out.push(`inputs.${name}`);
  }
  if (expected.config !== undefined)
    out.push(...topLevelDifferences('config', recorded.config, expected.config));
  if (expected.code !== undefined) out.push(...topLevelDifferences('code', recorded.code, expected.code));
  return out;
}

/**
 * Whether folder `prefix` holds a committed artifact made with `expectedCacheKey`:
 * - `absent`: no manifest (never committed, or un-committed): compute it.
 * - `match`: same cache key: reuse `read` (files checked first when `opts.verify` is set).
 * - `mismatch`: committed with another key: stale. `error` is a StaleArtifactError to throw (or show).
 * A manifest that is not valid JSON/v1/v2 throws ArtifactCorruptError; store errors pass through.
 */
export async function checkCommitted(
  store: ArtifactStore,
  prefix: string,
  expectedCacheKey: string,
  opts: CheckCommittedOptions = {},
): Promise<CommittedCheck> {
  let read: ReadManifestResult;
  try {
    read = await readManifest(store, prefix);
  } catch (err) {
    if (err instanceof ArtifactMissingError) return { state: 'absent' };
    throw err;
  }
  const recordedKey = read.manifest.cacheKey;
  if (recordedKey === expectedCacheKey) {
    if (opts.verify === 'full') await verifyArtifact(store, read.prefix, { concurrency: opts.concurrency });
    else if (opts.verify === 'sizes') await checkArtifactSizes(store, read, opts.concurrency);
    return { state: 'match', read };
  }
  const differences = opts.expected ? manifestDifferences(read.manifest, opts.expected) : [];
  const error = new StaleArtifactError({
    uri: redactUri(read.uri),
    recordedKey,
    expectedKey: expectedCacheKey,
    differences,
    stage: opts.forceStage ?? opts.expected?.stage ?? read.manifest.stage,
  });
  return { state: 'mismatch', read, recordedKey, differences, error };
}
