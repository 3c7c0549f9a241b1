/**
 * Validation of the pipeline's single JSON input: every problem is reported at once, each naming
 * its key (`prepare_corpus.max_passage_tokens: must be ...`), then defaults are filled in.
 */

import { STAGE_ORDER } from '../constants';
import { DEFAULT_CORPUS_PREP_CONFIG, validateCorpusPrepConfig } from '../corpus/config';
import { CORPUS_FORMATS, type CorpusPrepConfig } from '../corpus/types';
import { ConfigError } from '../errors';
import { trainerConfigDefaults, validateTrainerConfig } from '../trainer/config-schema';
import type {
  PipelineInput,
  PrepareCorpusConfig,
  PretrainConfig,
  ResolvedPipelineInput,
  StageSupervision,
  TrainingSupervisionInput,
} from './types';

export const DEFAULT_PREPARE_CORPUS_CONFIG: Readonly<PrepareCorpusConfig> = Object.freeze({
  ...DEFAULT_CORPUS_PREP_CONFIG,
  max_parallel_shards: 4,
});

const TOP_LEVEL_KEYS = [
  'run_id',
  'artifacts',
  'corpus',
  'tokenizer',
  'prepare_corpus',
  'pretrain',
  'training',
  'force',
  'from_stage',
];

/**
 * GPU-stage supervision defaults. A dead worker is noticed within 60 s (the runner heartbeats every few
 * seconds); a trainer silent for 15 min is presumed hung; 14 days bound a stage whatever its retries do.
 */
export const DEFAULT_STAGE_SUPERVISION: Readonly<StageSupervision> = Object.freeze({
  heartbeat_timeout_s: 60,
  max_attempts: 20,
  stall_timeout_s: 900,
  stage_timeout_h: 336,
});

/**
 * Pre-training defaults for the pipeline: a small BERT from scratch (works on any corpus, CPU included).
 * Real runs pass `model_init` (a local BERT-family dir) and their own sizes; every key is the trainer's.
 */
export const DEFAULT_PRETRAIN_CONFIG: Readonly<PretrainConfig> = Object.freeze({
  model_config: { hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 512 },
  max_steps: 200,
  batch_size: 16,
  checkpoint_every: 50,
  log_every: 10,
});

/** Returns every problem of `raw` as "key: reason"; empty means valid. */
export function validatePipelineInput(raw: unknown): string[] {
  if (!isObject(raw)) return ['(input): must be a JSON object'];
  const problems: string[] = [];
  for (const key of Object.keys(raw)) if (!TOP_LEVEL_KEYS.includes(key)) problems.push(`${key}: unknown key`);
  if (raw.run_id !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(String(raw.run_id)))
    problems.push('run_id: must be 1-128 characters of letters, digits, ".", "_" or "-"');
  if (raw.artifacts !== undefined && (typeof raw.artifacts !== 'string' || raw.artifacts === ''))
    problems.push('artifacts: must be a non-empty URI or path');
  problems.push(...validateCorpus(raw.corpus));
  if (raw.tokenizer !== undefined) {
    if (!isObject(raw.tokenizer)) problems.push('tokenizer: must be an object');
    else {
      for (const key of Object.keys(raw.tokenizer))
        if (key !== 'source') problems.push(`tokenizer.${key}: unknown key`);
      if (raw.tokenizer.source !== undefined && typeof raw.tokenizer.source !== 'string')
        problems.push('tokenizer.source: must be a path or URI');
    }
  }
  if (raw.prepare_corpus !== undefined) {
    const { max_parallel_shards, ...domain } = isObject(raw.prepare_corpus) ? raw.prepare_corpus : {};
    if (!isObject(raw.prepare_corpus)) problems.push('prepare_corpus: must be an object');
    else {
      if (
        max_parallel_shards !== undefined &&
        !(Number.isInteger(max_parallel_shards) && (max_parallel_shards as number) >= 1)
      )
        problems.push(
          `prepare_corpus.max_parallel_shards: must be an integer >= 1, got ${JSON.stringify(max_parallel_shards)}`,
        );
      problems.push(...validateCorpusPrepConfig(domain).map((p) => `prepare_corpus.${p}`));
    }
  }
  if (raw.pretrain !== undefined && raw.pretrain !== null) {
    if (!isObject(raw.pretrain))
      problems.push('pretrain: must be an object (the trainer config) or null to skip pre-training');
    else problems.push(...validateTrainerConfig('pretrain', withPretrainDefaults(raw.pretrain)));
  }
  problems.push(...validateTraining(raw.training));
  problems.push(...validateRerun(raw.force, raw.from_stage));
  return problems;
}

function validateSupervision(value: Record<string, unknown>, at: string): string[] {
  const problems: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (!(key in DEFAULT_STAGE_SUPERVISION)) problems.push(`${at}.${key}: unknown key`);
    else if (!(Number.isInteger(v) && (v as number) >= 1))
      problems.push(`${at}.${key}: must be an integer >= 1, got ${JSON.stringify(v)}`);
  }
  return problems;
}

function validateTraining(training: unknown): string[] {
  if (training === undefined) return [];
  if (!isObject(training)) return ['training: must be an object'];
  const { stages, ...defaults } = training;
  const problems = validateSupervision(defaults, 'training');
  if (stages === undefined) return problems;
  if (!isObject(stages)) return [...problems, 'training.stages: must be an object {stage: {...}}'];
  for (const [stage, value] of Object.entries(stages)) {
    if (!STAGE_ORDER.includes(stage as never))
      problems.push(`training.stages.${stage}: unknown stage (one of ${STAGE_ORDER.join(', ')})`);
    else if (!isObject(value)) problems.push(`training.stages.${stage}: must be an object`);
    else problems.push(...validateSupervision(value, `training.stages.${stage}`));
  }
  return problems;
}

function validateRerun(force: unknown, fromStage: unknown): string[] {
  const problems: string[] = [];
  const known = `one of ${STAGE_ORDER.join(', ')}`;
  if (force !== undefined && typeof force !== 'boolean') {
    if (!Array.isArray(force)) problems.push('force: must be true, false or a list of stage names');
    else
      for (const stage of force)
        if (!STAGE_ORDER.includes(stage as never))
          problems.push(`force: unknown stage ${JSON.stringify(stage)} (${known})`);
  }
  if (fromStage !== undefined && !STAGE_ORDER.includes(fromStage as never))
    problems.push(`from_stage: unknown stage ${JSON.stringify(fromStage)} (${known})`);
  return problems;
}

/** The stages `force` and `from_stage` ask to re-run, in pipeline order. */
export function forcedStages(force: boolean | string[] | undefined, fromStage: string | undefined): string[] {
  const from = fromStage === undefined ? STAGE_ORDER.length : STAGE_ORDER.indexOf(fromStage as never);
  return STAGE_ORDER.filter(
    (stage, i) =>
      force === true || (Array.isArray(force) && force.includes(stage)) || (from >= 0 && i >= from),
  );
}

/** Supervision of one GPU stage: its overrides over the run's defaults over the built-in ones. */
export function supervisionFor(training: TrainingSupervisionInput, stage: string): StageSupervision {
  const { stages, ...defaults } = training;
  return { ...DEFAULT_STAGE_SUPERVISION, ...defaults, ...(stages[stage] ?? {}) };
}

function validateCorpus(corpus: unknown): string[] {
  if (!isObject(corpus)) return ['corpus: required object {source, format?, name?}'];
  const problems: string[] = [];
  for (const key of Object.keys(corpus))
    if (!['source', 'format', 'name'].includes(key)) problems.push(`corpus.${key}: unknown key`);
  if (typeof corpus.source !== 'string' || corpus.source === '')
    problems.push('corpus.source: required path or URI of the corpus directory');
  if (
    corpus.format !== undefined &&
    corpus.format !== 'auto' &&
    !CORPUS_FORMATS.includes(corpus.format as never)
  )
    problems.push(`corpus.format: must be one of auto, ${CORPUS_FORMATS.join(', ')}`);
  if (corpus.name !== undefined && (typeof corpus.name !== 'string' || corpus.name === ''))
    problems.push('corpus.name: must be a non-empty string');
  return problems;
}

/** One run id, one owner: the pipeline workflow of run `R` is `pipeline-R`, whoever starts it. */
export function workflowIdFor(runId: string): string {
  return `pipeline-${runId}`;
}

/** The run id a workflow id stands for (`pipeline-R` → `R`; any other id → itself, made path-safe). */
export function runIdOf(workflowId: string): string {
  const id = workflowId.startsWith('pipeline-') ? workflowId.slice('pipeline-'.length) : workflowId;
  return id.replace(/[^A-Za-z0-9._-]/g, '-');
}

/**
 * Validates and fills defaults; throws one ConfigError listing every problem. `workflowId` is the
 * pipeline workflow's id: a run id may only be written by its own workflow (`pipeline-<run_id>`), so two
 * workflows never write one artifact prefix.
 */
export function resolvePipelineInput(raw: unknown, workflowId: string): ResolvedPipelineInput {
  const problems = validatePipelineInput(raw);
  const given = isObject(raw) && typeof raw.run_id === 'string' ? raw.run_id : undefined;
  if (given !== undefined && problems.length === 0 && workflowId !== workflowIdFor(given))
    problems.push(
      `run_id: run ${given} belongs to workflow id ${workflowIdFor(given)}, but this workflow is ${workflowId}; start it with workflow id ${workflowIdFor(given)} (or leave run_id out to derive it from the workflow id)`,
    );
  if (problems.length > 0) throw new ConfigError('pipeline input', problems.join('; '));
  const input = raw as PipelineInput;
  const source = input.corpus.source;
  const format = input.corpus.format ?? 'auto';
  const prepare: PrepareCorpusConfig = {
    ...DEFAULT_PREPARE_CORPUS_CONFIG,
    ...definedOnly(input.prepare_corpus ?? {}),
  };
  if (format !== 'auto') prepare.format = format;
  return {
    run_id: input.run_id ?? runIdOf(workflowId),
    artifacts: input.artifacts,
    corpus: { source, format, name: input.corpus.name ?? lastSegment(source) },
    tokenizer: { ...(input.tokenizer ?? {}) },
    prepare_corpus: prepare,
    pretrain:
      input.pretrain === null
        ? null
        : { ...trainerConfigDefaults('pretrain'), ...withPretrainDefaults(input.pretrain ?? {}) },
    training: {
      ...DEFAULT_STAGE_SUPERVISION,
      ...definedOnly(input.training ?? {}),
      stages: { ...(input.training?.stages ?? {}) },
    },
    force: forcedStages(input.force, input.from_stage),
  };
}

/** The defaults' from-scratch model_config only applies when the user names no model_init of their own. */
function withPretrainDefaults(user: Record<string, unknown>): PretrainConfig {
  const { model_config, ...rest } = DEFAULT_PRETRAIN_CONFIG;
  return { ...rest, ...(user.model_init ? {} : { model_config }), ...user };
}

function lastSegment(source: string): string {
  const parts = source.replace(/\/+$/, '').split('/');
  return parts[parts.length - 1] || source;
}

function definedOnly<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The corpus-preparation domain config: the stage config without its fan-out setting. */
export function corpusPrepConfig(config: PrepareCorpusConfig): CorpusPrepConfig {
  const { max_parallel_shards: _fanOut, ...domain } = config;
  return domain;
}
