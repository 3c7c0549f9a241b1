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
  /**
   * Groups the run's artifacts under runs/<run_id>/. One run id, one owner: the workflow id must be
   * `pipeline-<run_id>` (the CLI does this); omitted → derived from the workflow id.
   */
  run_id?: string;
  /** Artifact root URI (`s3://bucket/prefix`, `file:///dir` or a path); defaults to the worker's COTMAE_ARTIFACTS. */
  artifacts?: string;
  corpus: CorpusSource;
  tokenizer?: TokenizerSource;
  /** Partial: missing keys take the documented defaults. */
  prepare_corpus?: Partial<PrepareCorpusConfig>;
  /**
   * Pre-training config, passed to `python -m cotmae_trainer pretrain` (snake_case keys, defaults and
   * meaning in trainer/README.md); validated against the trainer's schema up front; `null` skips pre-training.
   */
  pretrain?: PretrainConfig | null;
  /** How the GPU stages are supervised. */
  training?: Partial<TrainingSupervisionInput>;
  /**
   * Re-run stages even when a committed artifact with the same cache key exists: `true` = every stage, or a
   * list of stage names. Also what allows replacing a run's artifact made with another key.
   */
  force?: boolean | string[];
  /** Re-run this stage and every stage after it (the ones before it are reused when their keys match). */
  from_stage?: string;
}

/** The trainer's own config object: validated against the trainer's schema (lib/trainer/config-schema.ts). */
export type PretrainConfig = Record<string, unknown>;

/** How one GPU stage is supervised. */
export interface StageSupervision {
  /** A GPU activity silent this long is presumed dead and retried elsewhere (default 60 s). */
  heartbeat_timeout_s: number;
  /** Attempts of a training activity before the stage fails (default 20; bad input is never retried). */
  max_attempts: number;
  /** A trainer that prints no progress line for this long is stopped and the attempt retried (default 900 s). */
  stall_timeout_s: number;
  /** Upper bound of the whole stage, all attempts and back-offs included (default 14 days). */
  stage_timeout_h: number;
}

/** `training` of the input: defaults for every GPU stage, and per-stage overrides. */
export interface TrainingSupervisionInput extends StageSupervision {
  stages: Record<string, Partial<StageSupervision>>;
}

/** The input after validation: every default filled in. */
export interface ResolvedPipelineInput {
  run_id: string;
  artifacts?: string;
  corpus: Required<CorpusSource>;
  tokenizer: TokenizerSource;
  prepare_corpus: PrepareCorpusConfig;
  /** With the trainer's defaults filled in (so `{}` and the explicit defaults have one cache key). */
  pretrain: PretrainConfig | null;
  training: TrainingSupervisionInput;
  /** Stages that must run even if reusable: `force` and `from_stage` resolved to stage names. */
  force: string[];
}

/** A committed stage output as later stages and the CLI see it. */
export interface StageResult {
  /** Artifact folder URI (ends in '/'). */
  uri: string;
  /** Resolved artifact root and the folder's prefix within it. */
  artifactRoot: string;
  prefix: string;
  manifestSha256: string;
  /** Identity of the content (sorted paths + sha256): what downstream cache keys are made of. */
  contentDigest: string;
  cacheKey: string;
  stats: Record<string, number>;
  /** Set when the stage did not run: 'run' = this run's own committed output, 'cache' = another run's. */
  reused?: 'run' | 'cache';
}

export interface PipelineResult {
  runId: string;
  tokenizer: StageResult;
  corpus: StageResult;
  pretrain?: StageResult;
  /** Stages that were reused instead of run. */
  cacheHits: string[];
}

/** A committed input of a stage: where it is and what it holds. */
export interface StageInputRef {
  /** The role, e.g. 'corpus', 'tokenizer' (also the key in the stage's cache key). */
  name: string;
  prefix: string;
  contentDigest: string;
}

/** The pre-training child workflow's input. */
export interface PretrainWorkflowInput {
  runId: string;
  artifactRoot: string;
  corpus: StageInputRef;
  tokenizer: StageInputRef;
  config: PretrainConfig;
  supervision: StageSupervision;
  force: boolean;
}

/**
 * One run of a trainer command as a GPU stage (the GPU-stage runner's activity input). The trainer gets
 * `--config`, one `--<flag> DIR` per input, `--output DIR` and `--resume` when a checkpoint exists.
 */
export interface TrainerStageSpec {
  stage: string;
  /** `python -m cotmae_trainer <command>`. */
  command: string;
  runId: string;
  artifactRoot: string;
  inputs: (StageInputRef & { flag: string })[];
  config: Record<string, unknown>;
  /** What is published from the output dir: folders and files (relative to it). */
  publish: { dirs: string[]; files: string[] };
  /** Config keys that do not change the result (checkpointing, logging, device): left out of the cache key. */
  volatileKeys: string[];
  /** Stored checkpoints kept (older ones are pruned unless an attempt may be resuming from them). */
  keepCheckpoints: number;
  stallTimeoutS: number;
  force: boolean;
  /**
   * The stage's cache key, fixed when the stage starts (resolveTrainerStage). Every attempt uses it, so a
   * deploy of new trainer code while the stage runs resumes its checkpoints instead of calling them stale.
   */
  cacheKey?: string;
}

/** What the GPU-stage runner's activity reports in its heartbeat details (read by `status` and `run`). */
export interface TrainerHeartbeat {
  phase: 'starting' | 'fetching' | 'waiting-for-gpu' | 'training' | 'uploading' | 'publishing';
  step: number;
  total?: number;
  loss?: number;
  losses?: Record<string, number>;
  lastCheckpoint?: string;
  resumedFrom?: number;
  device?: string;
  worker?: string;
}

/** Reads a stage's committed artifact (or the cache index) before running it. */
export interface ResolveTrainerStageInput {
  spec: TrainerStageSpec;
}

export type StageResolution = { kind: 'reuse'; result: StageResult } | { kind: 'run'; cacheKey: string };

export interface PrepareCorpusInput {
  runId: string;
  artifacts?: string;
  corpus: Required<CorpusSource>;
  tokenizer: TokenizerSource;
  config: PrepareCorpusConfig;
  /** Re-run these even if reusable: 'tokenizer', 'prepare-corpus'. */
  force: string[];
}

/**
 * Where the plan of a corpus preparation is stored: each shard activity gets this plus its own shard spec,
 * so the workflow history grows with the number of shards, not with its square.
 */
export interface PlanRef {
  artifactRoot: string;
  runId: string;
  /** sha256 of plan.json's bytes: names it (runs/<run>/prepare-corpus/plans/<sha256>.json), workers cache it. */
  sha256: string;
}

/** What planning decided (stored as plan.json; not passed through the workflow history). */
export interface CorpusPlan {
  runId: string;
  artifactRoot: string;
  /** Stage output prefix relative to the root: runs/<runId>/prepare-corpus/ */
  outputPrefix: string;
  cacheKey: string;
  corpus: Required<CorpusSource>;
  format: CorpusFormat;
  tokenizer: StageResult;
  /** Content digest of the corpus source. */
  sourceDigest: string;
  config: PrepareCorpusConfig;
  shards: ShardSpec[];
  /** Overwrite shards committed with another key (force). */
  force: boolean;
}

/** A shard spec as it travels through the history: the plan's format is left out (the same for every shard). */
export type PlannedShard = Omit<ShardSpec, 'format'>;

export type PlanCorpusResult =
  | { kind: 'reuse'; tokenizer: StageResult; result: StageResult }
  | { kind: 'plan'; tokenizer: StageResult; plan: PlanRef; shards: PlannedShard[] };

export interface PrepareShardInput {
  plan: PlanRef;
  shard: PlannedShard;
}

/** Small on purpose: one of these per shard lands in the history. */
export interface ShardOutcome {
  /** True when a previous attempt had already committed this shard (with the same key). */
  reused: boolean;
}

export interface FinalizeCorpusInput {
  plan: PlanRef;
  /** Shards re-used rather than prepared (for the stats). */
  reusedShards: number;
}
