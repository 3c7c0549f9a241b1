/**
 * How each training stage plugs into the GPU-stage runner: its trainer command, inputs and their flags,
 * what it publishes, which config keys do not change its result. Pure data: safe in the workflow sandbox.
 */
import { STAGES } from '../constants';
import type { PretrainWorkflowInput, TrainerStageSpec } from './types';

/**
 * Trainer config keys that may change between attempts without changing the result (the trainer accepts
 * them on `--resume`, trainer/README.md): left out of the stage's cache key.
 */
export const VOLATILE_TRAINER_KEYS = [
  'checkpoint_every',
  'keep_checkpoints',
  'log_every',
  'device',
  'compile',
];

export function pretrainStageSpec(input: PretrainWorkflowInput): TrainerStageSpec {
  const keep = input.config.keep_checkpoints;
  return {
    stage: STAGES.pretrain,
    command: 'pretrain',
    runId: input.runId,
    artifactRoot: input.artifactRoot,
    inputs: [
      { ...input.corpus, flag: 'data' },
      { ...input.tokenizer, flag: 'tokenizer' },
    ],
    config: input.config,
    publish: { dirs: ['model', 'decoders'], files: ['pretrain_summary.json', 'train_log.jsonl'] },
    volatileKeys: VOLATILE_TRAINER_KEYS,
    keepCheckpoints: typeof keep === 'number' && keep >= 1 ? keep : 2,
    stallTimeoutS: input.supervision.stall_timeout_s,
    force: input.force,
  };
}
