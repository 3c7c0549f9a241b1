/**
 * The manifest: its format (`cotmae.manifest/v2`, still reading v1), validation, content identity, and how
 * a reader gets from a logical file path to the object that holds its bytes.
 *
 * An artifact is a folder whose `manifest.json` lists its files. The manifest is written last, create-only:
 * it is the commit point (writer.ts). A folder without one is incomplete and refused (ArtifactMissingError).
 * A file's bytes live at `object` (relative to the folder; a writer stages them under
 * `_staged/<attempt>/<path>`), or at `path` itself when `object` is absent (v1 manifests, recorded files).
 * Readers therefore always resolve through the manifest (artifactObjectKey), never by path alone.
 *
 * Two digests identify an artifact:
 * - the manifest digest (`manifestSha256`): sha256 of manifest.json's exact bytes. It pins one commit (run id,
 *   time, object locations included); consumers record it as their input digest.
 * - the content digest (`contentDigest`): sha256 over the sorted paths and file sha256s only. Two artifacts
 *   with the same files have the same content digest, whoever wrote them, wherever and whenever.
 */
import { ArtifactCorruptError, ArtifactMissingError, InvalidKeyError } from '../errors';
import { sha256Hex } from './cacheKey';
import type { CodeVersion } from './codeVersion';
import { compareKeys, folderPrefix, isValidKey, validateKey } from './keys';
import type { ArtifactStore } from './store';

/** The schema written by this version. */
export const MANIFEST_SCHEMA = 'cotmae.manifest/v2';
/** The previous schema: still read (no `contentDigest`, no `object`: files live at their path). */
export const MANIFEST_SCHEMA_V1 = 'cotmae.manifest/v1';
export type ManifestSchema = typeof MANIFEST_SCHEMA | typeof MANIFEST_SCHEMA_V1;
export const MANIFEST_FILE = 'manifest.json';
/**
 * Top-level folder of an artifact where writers stage their files, one sub-folder per attempt
 * (`<folder>/_staged/<attempt>/<path>`). Reserved: no artifact file path may start with it.
 */
export const STAGING_DIR = '_staged';

export interface ManifestInput {
  /** The input's role in the stage, e.g. 'corpus', 'tokenizer'. */
  name: string;
  uri: string;
  manifestSha256: string;
}

export interface ManifestFile {
  /** The file's logical path, relative to the artifact folder, '/'-separated. */
  path: string;
  bytes: number;
  sha256: string;
  /**
   * Where the bytes are: a key relative to the artifact folder (e.g. `_staged/<attempt>/<path>`, or a nested
   * artifact's object). Omitted when equal to `path`.
   */
  object?: string;
}

export interface Manifest {
  schema: ManifestSchema;
  stage: string;
  runId: string;
  cacheKey: string;
  /** contentDigest(files). Present in v2 (checked on read); v1 manifests lack it (readers compute it). */
  contentDigest?: string;
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

export interface ReadManifestResult {
  /** The artifact folder's URI (ends in '/'). */
  uri: string;
  /** The folder prefix within the store ('' or ending in '/'). */
  prefix: string;
  /** sha256 of manifest.json's exact bytes. */
  manifestSha256: string;
  /** contentDigest(manifest.files): recorded in v2 manifests, computed for v1. */
  contentDigest: string;
  manifest: Manifest;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The content identity of a set of files: sha256 of the lines `<sha256>  <path>\n` (the `sha256sum` format),
 * sorted by path in UTF-8 byte order. Only paths and file digests count: never the manifest's bytes, run id,
 * creation time, object locations or mtimes. Reproducible in a shell from a fetched copy:
 * `find . -type f ! -name manifest.json | sed 's|^\./||' | LC_ALL=C sort | tr '\n' '\0' | xargs -0 sha256sum | sha256sum`.
 */
export function contentDigest(files: readonly { path: string; sha256: string }[]): string {
  const sorted = [...files].sort((a, b) => compareKeys(a.path, b.path));
  let text = '';
  let previous: string | undefined;
  for (const f of sorted) {
    validateKey(f.path);
    if (f.path === previous) throw new InvalidKeyError(f.path, 'listed twice');
    if (!SHA256_HEX.test(f.sha256))
      throw new InvalidKeyError(f.path, `bad sha256 ${JSON.stringify(f.sha256)}`);
    text += `${f.sha256}  ${f.path}\n`;
    previous = f.path;
  }
  return sha256Hex(text);
}

/** True for paths no artifact file may have: the top-level manifest.json and anything under `_staged/`. */
export function isReservedPath(p: string): boolean {
  return p === MANIFEST_FILE || p === STAGING_DIR || p.startsWith(`${STAGING_DIR}/`);
}

/** Validates an artifact file's logical path (InvalidKeyError): a valid key, not reserved. */
export function checkFilePath(p: string): string {
  validateKey(p);
  if (p === MANIFEST_FILE)
    throw new InvalidKeyError(p, `'${MANIFEST_FILE}' is reserved for the artifact's manifest`);
  if (isReservedPath(p))
    throw new InvalidKeyError(p, `the top-level folder '${STAGING_DIR}/' is reserved for staged uploads`);
  return p;
}

/** The store key holding `file`'s bytes in the artifact at folder `prefix`. */
export function objectKeyOf(prefix: string, file: ManifestFile): string {
  return folderPrefix(prefix) + (file.object ?? file.path);
}

/**
 * The store key holding the bytes of `filePath` in a committed artifact (relative to the same store as
 * `read`): `read.prefix` + the file's `object` (or its path). ArtifactMissingError when the manifest does not
 * list `filePath`.
 */
export function artifactObjectKey(
  read: Pick<ReadManifestResult, 'prefix' | 'uri' | 'manifest'>,
  filePath: string,
): string {
  const file = read.manifest.files.find((f) => f.path === filePath);
  if (!file) throw new ArtifactMissingError(`${read.uri}${filePath}`, 'not listed in the artifact manifest');
  return objectKeyOf(read.prefix, file);
}

function corrupt(uri: string, reason: string): never {
  throw new ArtifactCorruptError(uri, reason);
}

/**
 * Checks a parsed manifest's shape (v1 or v2); throws ArtifactCorruptError. For v2, the recorded
 * `contentDigest` must match the files.
 */
export function validateManifest(value: unknown, uri: string): Manifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    corrupt(uri, 'manifest.json is not an object');
  const m = value as Record<string, unknown>;
  if (m.schema !== MANIFEST_SCHEMA && m.schema !== MANIFEST_SCHEMA_V1)
    corrupt(uri, `unsupported manifest schema ${JSON.stringify(m.schema)}`);
  const v2 = m.schema === MANIFEST_SCHEMA;
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
    if (typeof p !== 'string' || !isValidKey(p) || p === MANIFEST_FILE || (v2 && isReservedPath(p))) {
      corrupt(uri, `manifest lists an invalid file path ${JSON.stringify(p)}`);
    }
    if (seen.has(p)) corrupt(uri, `manifest lists ${p} twice`);
    seen.add(p);
    if (typeof f.bytes !== 'number' || !Number.isSafeInteger(f.bytes) || f.bytes < 0) {
      corrupt(uri, `${p}: bad size in manifest`);
    }
    if (typeof f.sha256 !== 'string' || !SHA256_HEX.test(f.sha256))
      corrupt(uri, `${p}: bad sha256 in manifest`);
    if (f.object !== undefined) {
      if (!v2) corrupt(uri, `${p}: 'object' needs schema ${MANIFEST_SCHEMA}`);
      if (typeof f.object !== 'string' || !isValidKey(f.object) || f.object === MANIFEST_FILE) {
        corrupt(uri, `${p}: invalid object key ${JSON.stringify(f.object)}`);
      }
    }
  }
  if (v2) {
    if (typeof m.contentDigest !== 'string' || !SHA256_HEX.test(m.contentDigest))
      corrupt(uri, 'manifest.contentDigest must be 64 lowercase hex digits');
    const actual = contentDigest(m.files as ManifestFile[]);
    if (actual !== m.contentDigest)
      corrupt(uri, `manifest.contentDigest ${m.contentDigest} does not match its files (${actual})`);
  } else if (m.contentDigest !== undefined) {
    corrupt(uri, `manifest.contentDigest needs schema ${MANIFEST_SCHEMA}`);
  }
  return value as Manifest;
}

/** Parses and validates manifest.json's bytes (ArtifactCorruptError). */
export function parseManifest(
  body: Buffer,
  uri: string,
): { manifest: Manifest; manifestSha256: string; contentDigest: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    corrupt(uri, `${MANIFEST_FILE} is not valid JSON`);
  }
  const manifest = validateManifest(parsed, uri);
  return {
    manifest,
    manifestSha256: sha256Hex(body),
    contentDigest: manifest.contentDigest ?? contentDigest(manifest.files),
  };
}

/**
 * Reads and checks an artifact's manifest. ArtifactMissingError when there is none (the folder is absent or
 * was never committed); ArtifactCorruptError when it is not a valid v1/v2 manifest.
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
  return { uri, prefix: folder, ...parseManifest(body, uri) };
}

/** True when `prefix` holds a manifest.json (a committed artifact; its files are not checked). */
export async function isCommitted(store: ArtifactStore, prefix: string): Promise<boolean> {
  return (await store.head(folderPrefix(prefix) + MANIFEST_FILE)) !== undefined;
}
