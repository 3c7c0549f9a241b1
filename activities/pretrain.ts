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
  type ManifestInput,
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
import { runTrainer, type TrainerEvent, type TrainerOutcome } from '../lib/trainer/process';
import { trainerEnv, trainerPython } from '../lib/trainer/python';
import { atEdge } from './failures';
import type { StageDeps } from './support';

/** The trainer gets this long after SIGTERM to write its checkpoint before SIGKILL. */
const TRAINER_GRACE_MS = 90_000;
/** Stored checkpoints kept per run (older ones are deleted once a newer one is committed). */
const KEEP_STORED_CHECKPOINTS = 2;

export interface PretrainHeartbeat {
  step: number;
  loss?: number;
  lastCheckpoint?: string;
}

/** Everything one attempt works with. */
interface Attempt {
  store: ArtifactStore;
  prefix: string;
  out: string;
  inputs: ManifestInput[];
  input: PretrainInput;
  heartbeat: Heartbeat;
}

export function createPretrainActivities(deps: StageDeps) {
  return {
    async pretrain(input: PretrainInput): Promise<PretrainResult> {
      const ctx = Context.current();
      // From the first moment (downloads, Python start-up), so a short heartbeat timeout only catches the dead.
      const heartbeat = startHeartbeat(ctx, (ctx.info.heartbeatDetails as PretrainHeartbeat) ?? { step: 0 });
      const store = openStore(input.artifactRoot);
      try {
        return await atEdge(async () => {
          const prefix = stagePrefix(input.runId, STAGES.pretrain);
          if (await isCommitted(store, prefix)) return resultOf(store, await readManifest(store, prefix));
          const cache = join(deps.workDir, 'artifacts');
          const [corpus, tokenizer] = await Promise.all([
            fetchCached(store, input.corpusPrefix, cache),
            fetchCached(store, input.tokenizerPrefix, cache),
          ]);
          const inputs = [
            { name: 'corpus', uri: store.uri(input.corpusPrefix), manifestSha256: corpus.sha },
            { name: 'tokenizer', uri: store.uri(input.tokenizerPrefix), manifestSha256: tokenizer.sha },
          ];
          const local = join(deps.workDir, 'runs', input.runId, STAGES.pretrain);
          const attempt: Attempt = { store, prefix, out: join(local, 'out'), inputs, input, heartbeat };
          await mkdir(attempt.out, { recursive: true });
          const resumeFrom = await ensureLatestCheckpoint(store, prefix, attempt.out);
          await uploadNewerLocalCheckpoints(attempt);
          const configFile = join(local, 'config.json');
          await writeFile(configFile, JSON.stringify(input.config, null, 2));
          const args = ['-m', 'cotmae_trainer', 'pretrain', '--config', configFile, '--data', corpus.dir];
          args.push(
            '--tokenizer',
            tokenizer.dir,
            '--output',
            attempt.out,
            ...(resumeFrom !== undefined ? ['--resume'] : []),
          );
          const losses = await train(attempt, args);
          return resultOf(store, await publishModel(attempt, losses, resumeFrom ?? 0));
        });
      } finally {
        heartbeat.stop();
        await store.close();
      }
    },
  };
}

/** Runs the trainer once; returns the last losses, or throws a retryable / non-retryable failure. */
async function train(attempt: Attempt, args: string[]): Promise<Record<string, number>> {
  const ctx = Context.current();
  const report = progressReporter(ctx, attempt.input.config.max_steps);
  let losses: Record<string, number> = {};
  const onEvent = async (event: TrainerEvent) => {
    if (event.event === 'step') {
      losses = { loss: event.loss, ...(event.losses ?? {}) };
      attempt.heartbeat.set({ ...attempt.heartbeat.get(), step: event.step, loss: event.loss });
    } else if (event.event === 'checkpoint') {
      const uri = await uploadCheckpoint(
        attempt.store,
        attempt.prefix,
        attempt.out,
        event.step,
        checkpointMeta(attempt),
      );
      attempt.heartbeat.set({ ...attempt.heartbeat.get(), step: event.step, lastCheckpoint: uri });
    } else if (event.event === 'done') {
      attempt.heartbeat.set({ ...attempt.heartbeat.get(), step: event.step });
    }
    await report(attempt.heartbeat.get(), losses, event.event === 'checkpoint');
  };
  const outcome = await runTrainer({
    python: trainerPython(),
    args,
    env: trainerEnv(),
    onEvent,
    signal: ctx.cancellationSignal,
    killGraceMs: TRAINER_GRACE_MS,
  });
  if (outcome.kind !== 'done') throw trainerFailure(outcome);
  return losses;
}

/** Exit 2 is bad input (never retried); an interruption or a crash is retried and resumes. */
function trainerFailure(outcome: Exclude<TrainerOutcome, { kind: 'done' }>): ApplicationFailure {
  if (outcome.kind === 'bad-input')
    return ApplicationFailure.create({
      message: `trainer: ${outcome.message}`,
      type: 'TrainerBadInput',
      nonRetryable: true,
      details: [outcome.stderrTail],
    });
  if (outcome.kind === 'interrupted')
    return ApplicationFailure.create({
      message: 'trainer interrupted after checkpointing',
      type: 'TrainerInterrupted',
    });
  return ApplicationFailure.create({
    message: `trainer: ${outcome.message}`,
    type: 'TrainerFailed',
    details: [outcome.stderrTail],
  });
}

async function publishModel(attempt: Attempt, losses: Record<string, number>, resumedFrom: number) {
  const { store, prefix, out, inputs, input } = attempt;
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
  for (const part of ['model', 'decoders']) await writer.addLocalDir(join(out, part), { under: part });
  for (const file of ['pretrain_summary.json', 'train_log.jsonl'])
    await writer.addLocalFile(file, join(out, file));
  return writer.commit({ ...losses, steps: attempt.heartbeat.get().step, resumed_from_step: resumedFrom });
}

function checkpointMeta(attempt: Attempt) {
  return {
    runId: attempt.input.runId,
    stage: STAGES.pretrain,
    inputs: attempt.inputs,
    config: attempt.input.config,
    keep: KEEP_STORED_CHECKPOINTS,
  };
}

/** A local checkpoint newer than any stored one (written just before a crash) is uploaded before resuming. */
async function uploadNewerLocalCheckpoints(attempt: Attempt): Promise<void> {
  const stored = (await storedCheckpointSteps(attempt.store, attempt.prefix)).at(-1) ?? -1;
  for (const step of await localCheckpointSteps(attempt.out))
    if (step > stored)
      await uploadCheckpoint(attempt.store, attempt.prefix, attempt.out, step, checkpointMeta(attempt));
}

interface Heartbeat {
  get(): PretrainHeartbeat;
  set(details: PretrainHeartbeat): void;
  stop(): void;
}

/** Heartbeats the latest details every second (the SDK throttles what it actually sends). */
function startHeartbeat(ctx: Context, initial: PretrainHeartbeat): Heartbeat {
  let details = initial;
  ctx.heartbeat(details);
  const timer = setInterval(() => ctx.heartbeat(details), 1000);
  return {
    get: () => details,
    set(next) {
      details = next;
      ctx.heartbeat(details);
    },
    stop: () => clearInterval(timer),
  };
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
    const workflowId = ctx.info.workflowExecution?.workflowId;
    if (!workflowId) return; // run outside a workflow (standalone activity): nobody to tell
    const stage: StageProgress = {
      stage: STAGES.pretrain,
      state: 'running',
      done: beat.step,
      ...(typeof maxSteps === 'number' ? { total: maxSteps } : {}),
      counts: losses,
      message: beat.lastCheckpoint ? `last checkpoint ${beat.lastCheckpoint}` : 'training',
    };
    // Progress display is best effort: training goes on if the signal fails.
    await ctx.client.workflow
      .getHandle(workflowId)
      .signal('stageProgress', stage)
      .catch(() => undefined);
  };
}

/** Downloads a committed artifact once per worker (keyed by its manifest digest). */
async function fetchCached(
  store: ArtifactStore,
  prefix: string,
  cacheRoot: string,
): Promise<{ dir: string; sha: string }> {
  const { manifestSha256 } = await readManifest(store, prefix);
  const dir = join(cacheRoot, manifestSha256);
  const local = openStore(dir);
  const cached = await readManifest(local, '').catch(() => undefined);
  await local.close();
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
