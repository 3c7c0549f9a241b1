/**
 * Corpus preparation for CoT-MAE pre-training, usable without Temporal.
 *
 * Order of a run: detectLayout → planShards → prepareShard (each shard, any order, in parallel) →
 * finalizeCorpus (duplicate doc ids, merged stats, doc-id index) → prepareQueries (needs the doc-id index).
 * prepareCorpusLocal does all of it in-process. File formats: docs/formats.md.
 */
import type { CorpusTokenizer } from '../tokenizer';
import { detectLayoutFromListing } from './layout';
import { planShardRanges } from './plan';
import { prepareQueriesFiles } from './queries';
import { runShard } from './shard';
import type {
  CorpusFormat,
  CorpusLayout,
  CorpusPrepConfig,
  DocIdSet,
  InputFile,
  QueriesResult,
  ShardProgress,
  ShardResult,
  ShardSpec,
} from './types';

export type { CorpusTokenizer, TrainTokenizerOptions } from '../tokenizer';
export { loadTokenizer, trainWordPieceTokenizer } from '../tokenizer';
export { AbortError } from './abort';
export { DEFAULT_CORPUS_PREP_CONFIG, resolveCorpusPrepConfig, validateCorpusPrepConfig } from './config';
export { type FinalizeOptions, finalizeCorpus, loadDocIdSet } from './finalize';
export { listLocalInputs, localFileAt, localInputFile } from './input';
export { type LocalPrepOptions, type LocalPrepResult, prepareCorpusLocal } from './local';
export { mergeStats } from './stats';
export { readCorpusTexts } from './texts';
export {
  type TrainOffThreadOptions,
  type TrainProgress,
  trainWordPieceTokenizerOffThread,
} from './train-off-thread';
export type {
  ByteRange,
  CorpusFormat,
  CorpusLayout,
  CorpusManifest,
  CorpusPrepConfig,
  CorpusStats,
  DocIdSet,
  EmptyTextPolicy,
  InputFile,
  InputLocator,
  PairStrategy,
  QueriesResult,
  ShardFiles,
  ShardProgress,
  ShardResult,
  ShardSpec,
  SinglePassagePolicy,
  TextNormalization,
} from './types';
export { CORPUS_FORMATS } from './types';

/**
 * Decide the input format and the role of each file from a listing of relative paths ('/' separators).
 * `formatOverride` skips detection but still assigns roles. Throws ConfigError('format') when undecidable.
 */
export function detectLayout(listing: readonly string[], formatOverride?: CorpusFormat): CorpusLayout {
  return detectLayoutFromListing(listing, formatOverride);
}

/**
 * Options of planShards: `shard_bytes` target bytes per shard (default 64 MiB); `signal` aborts planning
 * (checked before each cut) with an AbortError.
 */
export interface PlanShardsOptions {
  shard_bytes?: number;
  signal?: AbortSignal;
}

/**
 * Split the corpus files of a layout into shards: uncompressed line-based files into byte ranges aligned to
 * line starts (reads a few bytes around each cut); `.gz` and squad files are one shard each. A planned file
 * that cannot be opened any more is a BadInputError naming it.
 */
export function planShards(
  layout: CorpusLayout,
  files: readonly InputFile[],
  opts: PlanShardsOptions = {},
): Promise<ShardSpec[]> {
  return planShardRanges(layout, files, opts);
}

/**
 * Prepare one shard into `outDir` (created if needed; the caller's to publish): passages.jsonl.gz,
 * tokens.bin, pairs.bin, doc_ids.tsv, doc_ids.hashes, stats.json (written last, atomically). Deterministic.
 * Throws BadInputError naming file:line on bad input, and naming the file for a truncated or corrupt gzip
 * stream or a file that vanished; `onProgress` is called at most every 500 ms and once at the end. With a
 * signal, it rejects with an AbortError within one batch of documents of the abort. On any failure the
 * shard's files are removed again.
 */
export function prepareShard(
  shard: ShardSpec,
  input: InputFile,
  tokenizer: CorpusTokenizer,
  config: Partial<CorpusPrepConfig>,
  outDir: string,
  onProgress?: (p: ShardProgress) => void,
  signal?: AbortSignal,
): Promise<ShardResult> {
  return runShard(shard, input, tokenizer, config, outDir, onProgress, signal);
}

/**
 * Normalize queries into `outDir/queries.jsonl` and qrels into `outDir/qrels/<split>.tsv`. Qrels naming an
 * unknown query or doc id are bad input unless `drop_unknown_qrels` (then counted in the result). The files
 * get their final names only once all are complete; on failure or abort (AbortError) none is left.
 */
export function prepareQueries(
  layout: CorpusLayout,
  inputs: readonly InputFile[],
  knownDocIds: DocIdSet,
  config: Partial<CorpusPrepConfig>,
  outDir: string,
  signal?: AbortSignal,
): Promise<QueriesResult> {
  return prepareQueriesFiles(layout, inputs, knownDocIds, config, outDir, signal);
}
