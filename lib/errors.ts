/**
 * Named domain errors. Activities turn the non-retryable ones into
 * ApplicationFailure.nonRetryable(message, err.type) using the constant `type`
 * (never the class name: a rename or a minifier would silently make it retryable).
 */
import { redactUri } from './artifacts/redact';
export abstract class PipelineError extends Error {
  abstract readonly type: string;
  /** Bad input and bad config never get better by retrying. */
  abstract readonly retryable: boolean;
}

/** Malformed input data: names the file and line (or key) at fault. */
export class BadInputError extends PipelineError {
  readonly type = 'BadInput';
  readonly retryable = false;
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(line === undefined ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
    this.name = 'BadInputError';
  }
}

/** Invalid configuration: names the key at fault. */
export class ConfigError extends PipelineError {
  readonly type = 'ConfigError';
  readonly retryable = false;
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`config ${key}: ${reason}`);
    this.name = 'ConfigError';
  }
}

/** An artifact that should exist is missing or incomplete (no manifest). */
export class ArtifactMissingError extends PipelineError {
  readonly type = 'ArtifactMissing';
  readonly retryable = false;
  constructor(
    readonly uri: string,
    reason = 'not found',
  ) {
    super(`artifact ${uri}: ${reason}`);
    this.name = 'ArtifactMissingError';
  }
}

/** An artifact whose bytes do not match its manifest (size or sha256). */
export class ArtifactCorruptError extends PipelineError {
  readonly type = 'ArtifactCorrupt';
  readonly retryable = false;
  constructor(
    readonly uri: string,
    reason: string,
  ) {
    super(`artifact ${uri}: ${reason}`);
    this.name = 'ArtifactCorruptError';
  }
}

/** A key that could escape its prefix or confuse a store (.., absolute, control characters). */
export class InvalidKeyError extends PipelineError {
  readonly type = 'InvalidKey';
  readonly retryable = false;
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`invalid artifact key ${JSON.stringify(key)}: ${reason}`);
    this.name = 'InvalidKeyError';
  }
}

/** A folder already holds a committed artifact and the writer was not asked to overwrite it. */
export class ArtifactExistsError extends PipelineError {
  readonly type = 'ArtifactExists';
  readonly retryable = false;
  constructor(readonly uri: string) {
    super(`artifact ${uri}: already committed (pass overwrite: true to replace it, or reuse it)`);
    this.name = 'ArtifactExistsError';
  }
}

/**
 * Another writer committed the artifact folder first: the manifest is written create-only, and this writer
 * lost the race. Its staged files are removed; the committed artifact is the other writer's.
 */
export class CommitConflictError extends PipelineError {
  readonly type = 'CommitConflict';
  readonly retryable = false;
  readonly uri: string;
  constructor(
    uri: string,
    reason = 'another writer committed this folder first (the manifest is create-only); reuse its artifact or write elsewhere',
  ) {
    super(`artifact ${redactUri(uri)}: not committed: ${reason}`);
    this.uri = redactUri(uri);
    this.name = 'CommitConflictError';
  }
}

/** What a StaleArtifactError knows: both cache keys in full, and what differs when it could tell. */
export interface StaleArtifactDetails {
  uri: string;
  /** The cache key recorded in the committed artifact's manifest. */
  recordedKey: string;
  /** The cache key this run computed for the same folder. */
  expectedKey: string;
  /** Differing top-level keys, e.g. `config.max_passage_tokens`, `inputs.corpus`, `code.gitCommit` (default none known). */
  differences?: string[];
  /** The stage, when known (for the `--force <stage>` hint). */
  stage?: string;
}

/**
 * A folder already holds a committed artifact, but one made from different inputs, config or code (its cache
 * key differs from the expected one): reusing it would silently mix runs.
 */
export class StaleArtifactError extends PipelineError {
  readonly type = 'StaleArtifact';
  readonly retryable = false;
  readonly details: Required<Omit<StaleArtifactDetails, 'stage'>> & { stage?: string };
  constructor(details: StaleArtifactDetails) {
    const short = (k: string) => (k.length > 12 ? `${k.slice(0, 12)}…` : k);
    const differences = details.differences ?? [];
    const uri = redactUri(details.uri);
    const what =
      differences.length > 0
        ? `differs in ${differences.join(', ')}`
        : 'what differs is unknown: compare the manifests';
    super(
      `artifact ${uri}: committed with cache key ${short(details.recordedKey)} but this run expects ` +
        `${short(details.expectedKey)} (${what}); start a new run id, or pass --force ${details.stage ?? '<stage>'} ` +
        'to recompute it',
    );
    this.details = { ...details, uri, differences };
    this.name = 'StaleArtifactError';
  }
}
