/**
 * Validation of the pipeline's single JSON input: every problem is reported at once, each naming
 * its key (`prepare_corpus.max_passage_tokens: must be ...`), then defaults are filled in.
 */
import { DEFAULT_CORPUS_PREP_CONFIG, validateCorpusPrepConfig } from '../corpus/config';
import { CORPUS_FORMATS, type CorpusPrepConfig } from '../corpus/types';
import { ConfigError } from '../errors';
import type {
  PipelineInput,
  PrepareCorpusConfig,
  PretrainConfig,
  ResolvedPipelineInput,
  TrainingSupervision,
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
];

export const DEFAULT_TRAINING_SUPERVISION: Readonly<TrainingSupervision> = Object.freeze({
  heartbeat_timeout_s: 300,
  max_attempts: 20,
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
  if (raw.pretrain !== undefined && raw.pretrain !== null && !isObject(raw.pretrain))
    problems.push('pretrain: must be an object (the trainer config) or null to skip pre-training');
  problems.push(...validateTraining(raw.training));
  return problems;
}

function validateTraining(training: unknown): string[] {
  if (training === undefined) return [];
  if (!isObject(training)) return ['training: must be an object'];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(training)) {
    if (!(key in DEFAULT_TRAINING_SUPERVISION)) problems.push(`training.${key}: unknown key`);
    else if (!(Number.isInteger(value) && (value as number) >= 1))
      problems.push(`training.${key}: must be an integer >= 1, got ${JSON.stringify(value)}`);
  }
  return problems;
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

/** Validates and fills defaults; throws one ConfigError listing every problem. */
export function resolvePipelineInput(raw: unknown, defaultRunId: string): ResolvedPipelineInput {
  const problems = validatePipelineInput(raw);
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
    run_id: input.run_id ?? defaultRunId.replace(/[^A-Za-z0-9._-]/g, '-'),
    artifacts: input.artifacts,
    corpus: { source, format, name: input.corpus.name ?? lastSegment(source) },
    tokenizer: { ...(input.tokenizer ?? {}) },
    prepare_corpus: prepare,
    pretrain: input.pretrain === null ? null : withPretrainDefaults(input.pretrain ?? {}),
    training: { ...DEFAULT_TRAINING_SUPERVISION, ...(input.training ?? {}) },
  };
}

/** The defaults' from-scratch model_config only applies when the user names no model_init of their own. */
function withPretrainDefaults(user: PretrainConfig): PretrainConfig {
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
