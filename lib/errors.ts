/**
 * Named domain errors. Activities turn the non-retryable ones into
 * ApplicationFailure.nonRetryable(message, err.type) using the constant `type`
 * (never the class name: a rename or a minifier would silently make it retryable).
 */
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
