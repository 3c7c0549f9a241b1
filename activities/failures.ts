import { ApplicationFailure } from '@temporalio/activity';
import { PipelineError } from '../lib/errors';

/**
 * Domain errors become Temporal failures here, at the edge: non-retryable ones keep their constant
 * `type` (BadInput, ConfigError, ...) so the workflow and the CLI can tell what went wrong. Anything
 * else is rethrown unchanged and retried by the activity's retry policy.
 */
export function toActivityFailure(err: unknown): unknown {
  if (err instanceof PipelineError && !err.retryable) {
    return ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: true });
  }
  return err;
}

/** Runs `body`, converting domain errors at the boundary. */
export async function atEdge<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw toActivityFailure(err);
  }
}
