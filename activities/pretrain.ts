/**
 * The pre-training stage on the GPU queue: fetch the prepared corpus and tokenizer (cached per worker),
 * resume from the newest checkpoint in the store, run the trainer with its progress streamed into
 * heartbeats, upload each checkpoint as it appears, and publish the model with a manifest written last.
 * Cancellation or worker shutdown: SIGTERM to the trainer's process group (it checkpoints and exits),
 * SIGKILL after the grace period.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  type ArtifactStore,
  beginArtifact,
  computeCacheKey,
  fetchArtifact,
  isCommitted,
  openStore,
  readManifest,
  stagePrefix,
} from '../lib/artifacts';
import { STAGES } from '../lib/constants';
import type { StageProgress } from '../lib/pipeline/progress';
import type { PretrainInput, PretrainResult } from '../lib/pipeline/types';
import {
  ensureLatestCheckpoint,
  localCheckpointSteps,
  storedCheckpointSteps,
  uploadCheckpoint,
} from '../lib/trainer/checkpoints';
import { runTrainer, type TrainerEvent } from '../lib/trainer/process';
import { trainerEnv, trainerPython } from '../lib/trainer/python';
import { atEdge } from './failures';
import type { StageDeps } from './support';

/** The trainer gets this long after SIGTERM to write its checkpoint before SIGKILL. */
const TRAINER_GRACE_MS = 90_000;

export interface PretrainHeartbeat {
  step: number;
  loss?: number;
  lastCheckpoint?: string;
}

export function createPretrainActivities(deps: StageDeps) {
  return {
    async pretrain(input: PretrainInput): Promise<PretrainResult> {
      return atEdge(async () => {
        const store = openStore(input.artifactRoot);
        try {
          const prefix = stagePrefix(input.runId, STAGES.pretrain);
          if (await isCommitted(store, prefix)) return resultOf(store, await readManifest(store, prefix));
          const local = join(deps.workDir, 'runs', input.runId, STAGES.pretrain);
          const [corpus, tokenizer] = await Promise.all([
            fetchCached(store, input.corpusPrefix, join(deps.workDir, 'artifacts')),
            fetchCached(store, input.tokenizerPrefix, join(deps.workDir, 'artifacts')),
          ]);
          const inputs = [
            { name: 'corpus', uri: store.uri(input.corpusPrefix), manifestSha256: corpus.sha },
            { name: 'tokenizer', uri: store.uri(input.tokenizerPrefix), manifestSha256: tokenizer.sha },
          ];
          const out = join(local, 'out');
          await mkdir(out, { recursive: true });
          const resumeFrom = await ensureLatestCheckpoint(store, prefix, out);
          const meta = { runId: input.runId, stage: STAGES.pretrain, inputs, config: input.config, keep: 2 };
          await uploadNewerLocalCheckpoints(store, prefix, out, meta);
          const configFile = join(local, 'config.json');
          await writeFile(configFile, JSON.stringify(input.config, null, 2));
          const curve = await train(
            store,
            prefix,
            out,
            configFile,
            corpus.dir,
            tokenizer.dir,
            resumeFrom,
            meta,
          );
          const writer = await beginArtifact(
            store,
            prefix,
            {
              stage: STAGES.pretrain,
              runId: input.runId,
              cacheKey: computeCacheKey({ stage: STAGES.pretrain, inputs, config: input.config }),
              inputs,
              config: input.config,
            },
            { overwrite: true },
          );
          for (const part of ['model', 'decoders'])
            await writer.addLocalDir(join(out, part), { under: part });
          for (const file of ['pretrain_summary.json', 'train_log.jsonl'])
            await writer.addLocalFile(file, join(out, file));
          const committed = await writer.commit({
            ...curve.final,
            steps: curve.lastStep,
            resumed_from_step: resumeFrom ?? 0,
          });
          return resultOf(store, committed);
        } finally {
          await store.close();
        }
      });
    },
  };
}

/** Runs the trainer once; returns the last losses. Throws a retryable or non-retryable failure otherwise. */
async function train(
  store: ArtifactStore,
  prefix: string,
  out: string,
  configFile: string,
  dataDir: string,
  tokenizerDir: string,
  resumeFrom: number | undefined,
  meta: Parameters<typeof uploadCheckpoint>[4],
): Promise<{ lastStep: number; final: Record<string, number> }> {
  const ctx = Context.current();
  let beat: PretrainHeartbeat = (ctx.info.heartbeatDetails as PretrainHeartbeat | undefined) ?? {
    step: resumeFrom ?? 0,
  };
  let final: Record<string, number> = {};
  const report = progressReporter(
    ctx,
    typeof meta.config === 'object' ? (meta.config as { max_steps?: unknown }).max_steps : undefined,
  );
  const onEvent = async (event: TrainerEvent) => {
    if (event.event === 'step') {
      beat = { ...beat, step: event.step, loss: event.loss };
      final = { loss: event.loss, ...(event.losses ?? {}) };
    } else if (event.event === 'checkpoint') {
      beat = {
        ...beat,
        step: event.step,
        lastCheckpoint: await uploadCheckpoint(store, prefix, out, event.step, meta),
      };
    }
    ctx.heartbeat(beat);
    await report(beat, final, event.event === 'checkpoint');
  };
  const args = [
    '-m',
    'cotmae_trainer',
    'pretrain',
    '--config',
    configFile,
    '--data',
    dataDir,
    '--tokenizer',
    tokenizerDir,
  ];
  args.push('--output', out);
  if (resumeFrom !== undefined) args.push('--resume');
  const keepAlive = setInterval(() => ctx.heartbeat(beat), 20_000);
  try {
    const outcome = await runTrainer({
      python: trainerPython(),
      args,
      env: trainerEnv(),
      onEvent,
      signal: ctx.cancellationSignal,
      killGraceMs: TRAINER_GRACE_MS,
    });
    if (outcome.kind === 'done') return { lastStep: beat.step, final };
    if (outcome.kind === 'bad-input')
      throw ApplicationFailure.create({
        message: `trainer: ${outcome.message}`,
        type: 'TrainerBadInput',
        nonRetryable: true,
        details: [outcome.stderrTail],
      });
    const why =
      outcome.kind === 'interrupted'
        ? 'trainer interrupted after checkpointing'
        : `trainer: ${outcome.message}`;
    throw ApplicationFailure.create({
      message: why,
      type: 'TrainerFailed',
      details: [outcome.kind === 'interrupted' ? '' : outcome.stderrTail],
    });
  } finally {
    clearInterval(keepAlive);
  }
}

const REPORT_EVERY_MS = 10_000;

/**
 * Sends the step, losses and last checkpoint to the workflow that runs this activity (its `stageProgress`
 * signal), at most every 10 s and at each checkpoint, so `cotmae status` and the Web UI show them.
 */
function progressReporter(ctx: Context, maxSteps: unknown) {
  let last = 0;
  return async (beat: PretrainHeartbeat, losses: Record<string, number>, force: boolean) => {
    const now = Date.now();
    if (!force && now - last < REPORT_EVERY_MS) return;
    last = now;
    const stage: StageProgress = {
      stage: STAGES.pretrain,
      state: 'running',
      done: beat.step,
      ...(typeof maxSteps === 'number' ? { total: maxSteps } : {}),
      counts: losses,
      message: beat.lastCheckpoint ? `last checkpoint ${beat.lastCheckpoint}` : 'training',
    };
    const workflowId = ctx.info.workflowExecution?.workflowId;
    if (!workflowId) return; // run outside a workflow (standalone activity): nobody to tell
    await ctx.client.workflow
      .getHandle(workflowId)
      .signal('stageProgress', stage)
      .catch(() => undefined); // progress display is best effort; training goes on
  };
}

async function uploadNewerLocalCheckpoints(
  store: ArtifactStore,
  prefix: string,
  out: string,
  meta: Parameters<typeof uploadCheckpoint>[4],
): Promise<void> {
  const stored = (await storedCheckpointSteps(store, prefix)).at(-1) ?? -1;
  for (const step of await localCheckpointSteps(out))
    if (step > stored) await uploadCheckpoint(store, prefix, out, step, meta);
}

/** Downloads a committed artifact once per worker (keyed by its manifest digest). */
async function fetchCached(
  store: ArtifactStore,
  prefix: string,
  cacheRoot: string,
): Promise<{ dir: string; sha: string }> {
  const { manifestSha256 } = await readManifest(store, prefix);
  const dir = join(cacheRoot, manifestSha256);
  const cached = await readManifest(openStore(dir), '').catch(() => undefined);
  if (cached?.manifestSha256 !== manifestSha256) await fetchArtifact(store, prefix, dir);
  return { dir, sha: manifestSha256 };
}

function resultOf(
  store: ArtifactStore,
  committed: { prefix: string; manifestSha256: string; manifest: { stats: Record<string, unknown> } },
): PretrainResult {
  const stats = Object.fromEntries(
    Object.entries(committed.manifest.stats).filter((e): e is [string, number] => typeof e[1] === 'number'),
  );
  return { uri: store.uri(committed.prefix), manifestSha256: committed.manifestSha256, stats };
}
