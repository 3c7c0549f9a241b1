/**
 * Workflow and activity contracts for the pipeline: one input and one result type per call.
 * Types only (plus pure helpers): safe to import into the workflow sandbox.
 * Keys of user-facing config are snake_case, passed unchanged to domain code and the trainer.
 */
import type { CorpusFormat, CorpusPrepConfig, ShardSpec } from '../corpus';

/** Where the corpus comes from: a local directory/file the CPU workers can read, or an imported dataset URI. */
export interface CorpusSource {
  /** Local path, `file:///...`, or `s3://bucket/prefix` of a dataset published by `cotmae data import`. */
  source: string;
  /** `auto` detects BEIR / MS MARCO / JSONL documents / SQuAD from the file names. */
  format?: CorpusFormat | 'auto';
  /** Name shown in the `Corpus` search attribute; defaults to the source's last path segment. */
  name?: string;
}

export interface TokenizerSource {
  /** A local HF model/tokenizer directory (or tokenizer.json), or an artifact URI; omit to train WordPiece on the corpus. */
  source?: string;
}

/** Corpus preparation config: the domain config (incl. `shard_bytes`) plus how many shards run at once. */
export interface PrepareCorpusConfig extends CorpusPrepConfig {
  /** Shard activities in flight at once. Default 4. */
  max_parallel_shards: number;
}

/** The pipeline workflow's single input object (paste it in the Web UI, or build it with `cotmae run`). */
export interface PipelineInput {
  /** Groups the run's artifacts under runs/<run_id>/; defaults to the workflow id. */
  run_id?: string;
  /** Artifact root URI (`s3://bucket/prefix`, `file:///dir` or a path); defaults to the worker's COTMAE_ARTIFACTS. */
  artifacts?: string;
  corpus: CorpusSource;
  tokenizer?: TokenizerSource;
  /** Partial: missing keys take the documented defaults. */
  prepare_corpus?: Partial<PrepareCorpusConfig>;
  /**
   * Pre-training config, passed unchanged to `python -m cotmae_trainer pretrain` (snake_case keys, defaults and
   * meaning in trainer/README.md); `null` skips pre-training.
   */
  pretrain?: PretrainConfig | null;
  /** How the GPU stages are supervised. */
  training?: Partial<TrainingSupervision>;
}

/** The trainer's own config object: validated by the trainer (unknown keys are errors naming the key). */
export type PretrainConfig = Record<string, unknown>;

export interface TrainingSupervision {
  /** A GPU activity silent this long is presumed dead and retried elsewhere (default 300 s). */
  heartbeat_timeout_s: number;
  /** Attempts of a training activity before the stage fails (default 20; bad input is never retried). */
  max_attempts: number;
}

/** The input after validation: every default filled in. */
export interface ResolvedPipelineInput {
  run_id: string;
  artifacts?: string;
  corpus: Required<CorpusSource>;
  tokenizer: TokenizerSource;
  prepare_corpus: PrepareCorpusConfig;
  pretrain: PretrainConfig | null;
  training: TrainingSupervision;
}

export interface PipelineResult {
  runId: string;
  corpus: PrepareCorpusResult;
  pretrain?: PretrainResult;
}

/** The pre-training child workflow's input. */
export interface PretrainWorkflowInput {
  activity: PretrainInput;
  training: TrainingSupervision;
}

export interface PretrainInput {
  runId: string;
  artifactRoot: string;
  /** Store prefixes (relative to the root) of the committed inputs. */
  corpusPrefix: string;
  tokenizerPrefix: string;
  config: PretrainConfig;
}

export interface PretrainResult {
  uri: string;
  manifestSha256: string;
  stats: Record<string, number>;
}

export interface PrepareCorpusInput {
  runId: string;
  artifacts?: string;
  corpus: Required<CorpusSource>;
  tokenizer: TokenizerSource;
  config: PrepareCorpusConfig;
}

/** What planning decided; passed back to each shard activity and to finalize. */
export interface CorpusPlan {
  runId: string;
  /** Resolved artifact root (the worker's default when the input had none). */
  artifactRoot: string;
  /** Stage output prefix relative to the root: runs/<runId>/prepare-corpus */
  outputPrefix: string;
  cacheKey: string;
  corpus: Required<CorpusSource>;
  format: CorpusFormat;
  /** Tokenizer directory artifact (committed, with manifest). */
  tokenizerUri: string;
  tokenizerManifestSha256: string;
  /** Identity of the corpus source (dataset manifest sha256, or a digest of the local listing). */
  sourceDigest: string;
  config: PrepareCorpusConfig;
  shards: ShardSpec[];
}

export interface PrepareShardInput {
  plan: CorpusPlan;
  shard: ShardSpec;
}

export interface ShardSummary {
  index: number;
  /** Shard artifact prefix relative to the root. */
  prefix: string;
  manifestSha256: string;
  documents: number;
  passages: number;
  tokens: number;
  /** True when a previous attempt had already committed this shard. */
  reused: boolean;
}

export interface FinalizeCorpusInput {
  plan: CorpusPlan;
  shards: ShardSummary[];
}

export interface PrepareCorpusResult {
  /** The resolved artifact root, and the store prefixes of the corpus and tokenizer artifacts. */
  artifactRoot: string;
  prefix: string;
  tokenizerPrefix: string;
  uri: string;
  manifestSha256: string;
  stats: Record<string, number>;
}
