/** Artifact storage: stores (local directory, S3), keys, manifests, cache keys. See docs/artifacts.md. */

export { ArtifactExistsError } from '../errors';
export {
  type CacheKeyInput,
  type CacheKeyParts,
  canonicalJson,
  computeCacheKey,
  sha256Hex,
  stagePrefix,
  validateSegment,
} from './cacheKey';
export { type CodeVersion, type CodeVersionOptions, findRepoRoot, getCodeVersion } from './codeVersion';
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
  type ArtifactMeta,
  ArtifactWriter,
  type BeginArtifactOptions,
  beginArtifact,
  type CommittedArtifact,
  type FetchOptions,
  fetchArtifact,
  hashingStream,
  isCommitted,
  MANIFEST_FILE,
  MANIFEST_SCHEMA,
  type Manifest,
  type ManifestFile,
  type ManifestInput,
  type ReadManifestResult,
  readManifest,
  type VerifyOptions,
  validateManifest,
  verifyArtifact,
} from './manifest';
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
