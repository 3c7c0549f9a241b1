import {
  executeChild,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createPipelineActivities } from '../activities/pipeline';
import { CPU_TASK_QUEUE, STAGES } from '../lib/constants';
import {
  describeProgress,
  type PipelineProgress,
  type StageProgress,
  withStage,
} from '../lib/pipeline/progress';
import type { PipelineInput, PipelineResult, PretrainResult } from '../lib/pipeline/types';
import { prepareCorpus } from './prepare-corpus';
import { pretrain } from './pretrain';
import { CorpusKey, PipelineRunKey, PipelineStageKey, progressQuery, stageProgressSignal } from './shared';

type Activities = ReturnType<typeof createPipelineActivities>;

/** Validation is pure and fast; a bad config fails once, without retries. */
const control = proxyActivities<Activities>({
  taskQueue: CPU_TASK_QUEUE,
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 5 },
});

/**
 * The whole pipeline. Today: corpus preparation → pre-training; later stages append here. Each stage is a child
 * workflow so it can be retried or re-run on its own; this workflow only decides the order and keeps
 * the progress that the `progress` query, the Web UI details and the search attributes show.
 */
export async function pipeline(rawInput: PipelineInput): Promise<PipelineResult> {
  const input = await control.validatePipelineInput({
    input: rawInput,
    workflowId: workflowInfo().workflowId,
  });
  let progress: PipelineProgress = {
    runId: input.run_id,
    state: 'running',
    stages: [
      { stage: STAGES.prepareCorpus, state: 'pending' },
      ...(input.pretrain ? [{ stage: STAGES.pretrain, state: 'pending' as const }] : []),
    ],
  };
  const update = (stage: StageProgress) => {
    progress = withStage(progress, stage);
    setCurrentDetails(describeProgress(progress));
  };
  setHandler(progressQuery, () => progress);
  setHandler(stageProgressSignal, update);
  upsertSearchAttributes([
    { key: PipelineRunKey, value: input.run_id },
    { key: CorpusKey, value: input.corpus.name },
  ]);

  const runStage = async <T>(stage: string, body: () => Promise<T>): Promise<T> => {
    upsertSearchAttributes([{ key: PipelineStageKey, value: stage }]);
    update({ stage, state: 'running' });
    try {
      return await body();
    } catch (err) {
      update({ stage, state: 'failed', message: (err as Error).message });
      progress = { ...progress, state: 'failed' };
      setCurrentDetails(describeProgress(progress));
      throw err;
    }
  };

  const corpus = await runStage(STAGES.prepareCorpus, () =>
    executeChild(prepareCorpus, {
      workflowId: `${workflowInfo().workflowId}/${STAGES.prepareCorpus}`,
      taskQueue: CPU_TASK_QUEUE,
      args: [
        {
          runId: input.run_id,
          artifacts: input.artifacts,
          corpus: input.corpus,
          tokenizer: input.tokenizer,
          config: input.prepare_corpus,
        },
      ],
    }),
  );
  update({
    stage: STAGES.prepareCorpus,
    state: 'completed',
    artifact: corpus.uri,
    counts: corpus.stats,
    message: '',
  });

  let pretrained: PretrainResult | undefined;
  if (input.pretrain) {
    const config = input.pretrain;
    pretrained = await runStage(STAGES.pretrain, () =>
      executeChild(pretrain, {
        workflowId: `${workflowInfo().workflowId}/${STAGES.pretrain}`,
        taskQueue: CPU_TASK_QUEUE,
        args: [
          {
            activity: {
              runId: input.run_id,
              artifactRoot: corpus.artifactRoot,
              corpusPrefix: corpus.prefix,
              tokenizerPrefix: corpus.tokenizerPrefix,
              config,
            },
            training: input.training,
          },
        ],
      }),
    );
    update({
      stage: STAGES.pretrain,
      state: 'completed',
      artifact: pretrained.uri,
      counts: pretrained.stats,
      message: '',
    });
  }

  progress = { ...progress, state: 'completed' };
  upsertSearchAttributes([{ key: PipelineStageKey, value: 'done' }]);
  setCurrentDetails(describeProgress(progress));
  return { runId: input.run_id, corpus, ...(pretrained ? { pretrain: pretrained } : {}) };
}
