/** Task queues: the only place their names are spelled out. */
export const CPU_TASK_QUEUE = 'cotmae-cpu';
export const GPU_TASK_QUEUE = 'cotmae-gpu';

/** Default Temporal namespace for the embedded dev server. */
export const DEFAULT_NAMESPACE = 'default';

/** Custom search attributes the workflows upsert (registered by infra/temporal.ts). */
export const SEARCH_ATTRIBUTES = {
  PipelineStage: 'Keyword',
  PipelineRun: 'Keyword',
  Corpus: 'Keyword',
} as const;

/** Stage names: used for activity names, artifact folders (runs/<runId>/<stage>/) and the progress query. */
export const STAGES = {
  prepareCorpus: 'prepare-corpus',
  pretrain: 'pretrain',
} as const;
export type StageName = (typeof STAGES)[keyof typeof STAGES];
