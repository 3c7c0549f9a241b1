import {
  executeChild,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createPipelineActivities } from '../activities/pipeline';
import { SearchAttributes, STAGES } from '../lib/constants';
import { supervisionFor } from '../lib/pipeline/config';
import {
  describeProgress,
  type PipelineProgress,
  type StageProgress,
  withStage,
} from '../lib/pipeline/progress';
import type { PipelineInput, PipelineResult, StageResult } from '../lib/pipeline/types';
import { prepareCorpus } from './prepare-corpus';
import { pretrain } from './pretrain';
import { progressQuery, rootMessage, wasCancelled } from './shared';

type Activities = ReturnType<typeof createPipelineActivities>;

/** Validation is pure and fast (plus a bounded check of the artifact root); bad input fails once. */
const control = proxyActivities<Activities>({
  startToCloseTimeout: '2m',
  scheduleToCloseTimeout: '10m',
  retry: { maximumAttempts: 5 },
});

/**
 * The whole pipeline: tokenizer + corpus preparation (one child) → pre-training (child). Each stage is a child
 * workflow so it can be retried or re-run on its own; this workflow decides the order and keeps the stage
 * states that the `progress` query, the Web UI details and the search attributes show. Children and their
 * activities run on this workflow's task queue (GPU work on its twin), so an embedded run stays private.
 */
export async function pipeline(rawInput: PipelineInput): Promise<PipelineResult> {
  const { workflowId } = workflowInfo();
  let progress: PipelineProgress = { runId: rawInput?.run_id ?? workflowId, state: 'running', stages: [] };
  setHandler(progressQuery, () => progress);
  const show = () => setCurrentDetails(describeProgress(progress));
  const update = (stage: StageProgress) => {
    progress = withStage(progress, stage);
    show();
  };

  const input = await control.validatePipelineInput({ input: rawInput, workflowId });
  progress = {
    runId: input.run_id,
    state: 'running',
    stages: [
      { stage: STAGES.tokenizer, state: 'pending' },
      { stage: STAGES.prepareCorpus, state: 'pending' },
      ...(input.pretrain ? [{ stage: STAGES.pretrain, state: 'pending' as const }] : []),
    ],
  };
  show();
  upsertSearchAttributes([
    { key: SearchAttributes.PipelineRun, value: input.run_id },
    { key: SearchAttributes.Corpus, value: input.corpus.name },
  ]);

  const cacheHits: string[] = [];
  const completed = (stage: string, result: StageResult) => {
    update({ stage, state: 'completed', artifact: result.uri, counts: result.stats, message: '' });
    if (result.reused) {
      update({ stage, state: 'completed', reused: result.reused });
      cacheHits.push(stage);
      upsertSearchAttributes([{ key: SearchAttributes.CacheHits, value: [...cacheHits] }]);
    }
  };
  let current: string = STAGES.prepareCorpus;
  const enter = (stage: string) => {
    current = stage;
    upsertSearchAttributes([{ key: SearchAttributes.PipelineStage, value: stage }]);
    update({ stage, state: 'running' });
  };

  try {
    enter(STAGES.prepareCorpus);
    update({ stage: STAGES.tokenizer, state: 'running' });
    const prepared = await executeChild(prepareCorpus, {
      workflowId: `${workflowId}/${STAGES.prepareCorpus}`,
      args: [
        {
          runId: input.run_id,
          artifacts: input.artifacts,
          corpus: input.corpus,
          tokenizer: input.tokenizer,
          config: input.prepare_corpus,
          force: input.force,
        },
      ],
    });
    completed(STAGES.tokenizer, prepared.tokenizer);
    completed(STAGES.prepareCorpus, prepared.corpus);

    let pretrained: StageResult | undefined;
    if (input.pretrain) {
      enter(STAGES.pretrain);
      pretrained = await executeChild(pretrain, {
        workflowId: `${workflowId}/${STAGES.pretrain}`,
        args: [
          {
            runId: input.run_id,
            artifactRoot: prepared.corpus.artifactRoot,
            corpus: {
              name: 'corpus',
              prefix: prepared.corpus.prefix,
              contentDigest: prepared.corpus.contentDigest,
            },
            tokenizer: {
              name: 'tokenizer',
              prefix: prepared.tokenizer.prefix,
              contentDigest: prepared.tokenizer.contentDigest,
            },
            config: input.pretrain,
            supervision: supervisionFor(input.training, STAGES.pretrain),
            force: input.force.includes(STAGES.pretrain),
          },
        ],
      });
      completed(STAGES.pretrain, pretrained);
    }

    progress = { ...progress, state: 'completed' };
    upsertSearchAttributes([{ key: SearchAttributes.PipelineStage, value: 'done' }]);
    show();
    return {
      runId: input.run_id,
      tokenizer: prepared.tokenizer,
      corpus: prepared.corpus,
      ...(pretrained ? { pretrain: pretrained } : {}),
      cacheHits,
    };
  } catch (err) {
    const cancelled = wasCancelled(err);
    for (const s of progress.stages)
      if (s.state === 'running' || (s.stage === current && s.state === 'pending'))
        update({
          stage: s.stage,
          state: cancelled ? 'cancelled' : 'failed',
          message: cancelled ? '' : rootMessage(err),
        });
    progress = { ...progress, state: cancelled ? 'cancelled' : 'failed' };
    upsertSearchAttributes([
      { key: SearchAttributes.PipelineStage, value: cancelled ? 'cancelled' : 'failed' },
    ]);
    show();
    throw err;
  }
}
