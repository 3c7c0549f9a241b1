/**
 * "The code version of a stage", as its cache keys record it: a digest of the source files that decide the
 * stage's output, so a change to them re-runs the stage (and a change elsewhere does not). Node only (reads
 * files); computed once per process.
 */
import { sourceDigest } from '../artifacts';

/** Tokenizer training and corpus preparation: the TypeScript domain code that reads, splits and encodes. */
export function corpusCodeVersion(): string {
  return sourceDigest(['lib/corpus', 'lib/tokenizer', 'lib/datasets'], { extensions: ['.ts'] });
}

/** Training stages: the Python trainer package and its pinned dependencies (torch changes numerics). */
export function trainerCodeVersion(): string {
  return sourceDigest(['trainer/cotmae_trainer', 'trainer/requirements.lock'], {
    extensions: ['.py', '.lock'],
  });
}
