/** Artifact storage: stores (local directory, S3), keys, manifests, cache keys. See docs/artifacts.md. */

export {
  ArtifactExistsError,
  CommitConflictError,
  type StaleArtifactDetails,
  StaleArtifactError,
} from '../errors';
export { mapLimit } from '../util/concurrency';
export {
  CACHE_INDEX_PREFIX,
  type CacheEntry,
  cacheEntryKey,
  type LookupCacheOptions,
  lookupCacheEntry,
  recordCacheEntry,
} from './cacheIndex';
export {
  type CacheKeyInput,
  type CacheKeyParts,
  canonicalJson,
  computeCacheKey,
  sha256Hex,
  stagePrefix,
  validateSegment,
} from './cacheKey';
export {
  type CodeVersion,
  type CodeVersionOptions,
  findRepoRoot,
  getCodeVersion,
  type SourceDigestOptions,
  sourceDigest,
} from './codeVersion';
export {
  compareKeys,
  folderPrefix,
  isValidKey,
  joinKey,
  joinPrefix,
  MAX_KEY_BYTES,
  relativeKey,
  validateKey,
  validatePrefix,
} from './keys';
export { LOCAL_TEMP_MARK, LocalStore, type LocalStoreOptions } from './local';
export {
  artifactObjectKey,
  contentDigest,
  isCommitted,
  isReservedPath,
  MANIFEST_FILE,
  MANIFEST_SCHEMA,
  MANIFEST_SCHEMA_V1,
  type Manifest,
  type ManifestFile,
  type ManifestInput,
  type ManifestSchema,
  parseManifest,
  type ReadManifestResult,
  readManifest,
  STAGING_DIR,
  validateManifest,
} from './manifest';
export { type CheckArtifactRootOptions, checkArtifactRoot } from './preflight';
export { redactUri } from './redact';
export {
  type CheckCommittedOptions,
  type CommittedCheck,
  checkCommitted,
  type ExpectedArtifact,
  manifestDifferences,
} from './reuse';
export {
  createS3Client,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_PART_SIZE,
  DEFAULT_QUEUE_SIZE,
  MIN_PART_SIZE,
  resolveS3Settings,
  type S3Credentials,
  type S3Settings,
  S3Store,
  type S3StoreOptions,
} from './s3';
export {
  type ArtifactStore,
  type ByteRange,
  formatStoreUri,
  type ObjectInfo,
  type OpenStoreOptions,
  openStore,
  type PutBody,
  parseStoreUri,
  type StoreLocation,
} from './store';
export { hashingStream, listLocalFiles } from './streams';
export {
  checkArtifactSizes,
  type FetchOptions,
  fetchArtifact,
  readArtifactFile,
  type VerifyOptions,
  verifyArtifact,
} from './verify';
export {
  type ArtifactMeta,
  ArtifactWriter,
  type BeginArtifactOptions,
  beginArtifact,
  type CommittedArtifact,
  putIfAbsent,
} from './writer';
