/**
 * Names that more than one layer spells: task queues, stages, search attributes. Pure data plus
 * @temporalio/common key definitions: safe to import into the workflow sandbox.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Task queues of a shared deployment: the only place their names are spelled out. */
export const CPU_TASK_QUEUE = 'cotmae-cpu';
export const GPU_TASK_QUEUE = 'cotmae-gpu';

/**
 * The GPU queue that belongs to a CPU queue. Workflows run on a CPU queue and send GPU work to its twin, so
 * an embedded `cotmae run` (queues `cotmae-cpu@<id>` / `cotmae-gpu@<id>`) only ever reaches its own workers.
 */
export function gpuQueueFor(cpuQueue: string): string {
  return cpuQueue.startsWith(CPU_TASK_QUEUE)
    ? GPU_TASK_QUEUE + cpuQueue.slice(CPU_TASK_QUEUE.length)
    : cpuQueue;
}

/** Private queues for one embedded process (its own workers serve them; nobody else polls them). */
export function embeddedQueues(id: string): { cpu: string; gpu: string } {
  return { cpu: `${CPU_TASK_QUEUE}@${id}`, gpu: `${GPU_TASK_QUEUE}@${id}` };
}

/** Default Temporal namespace for the embedded dev server. */
export const DEFAULT_NAMESPACE = 'default';

/** Custom search attributes the workflows upsert; infra/temporal.ts registers them from this list. */
export const SearchAttributes = {
  PipelineStage: defineSearchAttributeKey('PipelineStage', SearchAttributeType.KEYWORD),
  PipelineRun: defineSearchAttributeKey('PipelineRun', SearchAttributeType.KEYWORD),
  Corpus: defineSearchAttributeKey('Corpus', SearchAttributeType.KEYWORD),
  /** Stages of the run that reused a committed artifact instead of running. */
  CacheHits: defineSearchAttributeKey('CacheHits', SearchAttributeType.KEYWORD_LIST),
} as const;

/**
 * Stage names: activity names, artifact folders (runs/<runId>/<stage>/), the progress query, `--force` and
 * `--from-stage`. In pipeline order.
 */
export const STAGES = {
  tokenizer: 'tokenizer',
  prepareCorpus: 'prepare-corpus',
  pretrain: 'pretrain',
} as const;
export type StageName = (typeof STAGES)[keyof typeof STAGES];
export const STAGE_ORDER: readonly StageName[] = [STAGES.tokenizer, STAGES.prepareCorpus, STAGES.pretrain];
