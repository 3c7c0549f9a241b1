/**
 * The GPU-stage runner, activity side: every trainer command (pretrain today; finetune, train-reranker,
 * encode next) runs through `runTrainerStage`. One attempt:
 *   1. reuse the run's committed output if it has the expected cache key (a mismatch is a StaleArtifactError
 *      unless forced);
 *   2. claim the stage (fence: a presumed-dead attempt still running elsewhere stops at its next upload);
 *   3. fetch the inputs into the worker's cache (keyed by content digest, verified);
 *   4. lease a GPU (CUDA_VISIBLE_DEVICES) and a private work dir;
 *   5. resume from the newest stored checkpoint made with the same key (pinned while in use);
 *   6. run the trainer: progress lines → heartbeat details; checkpoints uploaded as they appear; a silent
 *      trainer is stopped after stall_timeout_s; cancellation or worker shutdown → SIGTERM → checkpoint →
 *      upload;
 *   7. publish the outputs with a manifest written last, and index them by cache key for other runs.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import {
  type ArtifactStore,
  beginArtifact,
  checkCommitted,
  computeCacheKey,
  fetchArtifact,
  lookupCacheEntry,
  type ManifestInput,
  openStore,
  readManifest,
  recordCacheEntry,
  stagePrefix,
} from '../lib/artifacts';
import { trainerCodeVersion } from '../lib/pipeline/code-versions';
import type {
  ResolveTrainerStageInput,
  StageResolution,
  StageResult,
  TrainerHeartbeat,
  TrainerStageSpec,
} from '../lib/pipeline/types';
import {
  clearPins,
  downloadCheckpoint,
  pinCheckpoint,
  resumableCheckpoint,
  unpinCheckpoint,
  uploadCheckpoint,
} from '../lib/trainer/checkpoints';
import type { GpuLease } from '../lib/trainer/gpu-leases';
import { runTrainer, type TrainerEvent, type TrainerOutcome } from '../lib/trainer/process';
import { trainerEnv, trainerPython } from '../lib/trainer/python';
import { processAlive } from '../lib/util/processes';
import { atEdge } from './failures';
import { DEFAULT_HEARTBEAT_EVERY_MS, type StageDeps } from './support';

const DEFAULT_TRAINER_KILL_GRACE_MS = 90_000;
const FENCE_FILE = 'attempt.json';

/** The stage's cache key: input content digests + the config that changes the result + the trainer's code. */
export function trainerStageKey(spec: TrainerStageSpec): string {
  const config = Object.fromEntries(
    Object.entries(spec.config).filter(([key]) => !spec.volatileKeys.includes(key)),
  );
  return computeCacheKey({
    stage: spec.stage,
    inputs: spec.inputs.map((i) => ({ name: i.name, manifestSha256: i.contentDigest })),
    config: { command: spec.command, config, code: trainerCodeVersion() },
  });
}

/** Thrown by an attempt that finds another attempt has claimed its stage since it started. */
class FencedError extends Error {
  constructor(uri: string, owner: string) {
    super(`${uri}: another attempt (${owner}) has taken over this stage; this attempt stops`);
    this.name = 'FencedError';
  }
}

export function createTrainerStageActivities(deps: StageDeps) {
  return {
    /**
     * CPU side, before a GPU is asked for: the run's own committed output (same key) or another run's
     * (the cache index) is reused; a committed output with another key fails unless forced.
     */
    async resolveTrainerStage({ spec }: ResolveTrainerStageInput): Promise<StageResolution> {
      return atEdge(async () => {
        const store = openStore(spec.artifactRoot);
        try {
          const cacheKey = trainerStageKey(spec);
          const reused = await reusable(store, spec, cacheKey);
          if (reused) return { kind: 'reuse', result: reused };
          if (!spec.force) {
            const hit = await lookupCacheEntry(store, cacheKey);
            if (hit)
              return {
                kind: 'reuse',
                result: { ...(await stageResult(store, hit.prefix)), reused: 'cache' },
              };
          }
          return { kind: 'run', cacheKey };
        } finally {
          await store.close();
        }
      });
    },

    /** GPU side: one attempt of the stage (see the file comment). */
    async runTrainerStage(spec: TrainerStageSpec): Promise<StageResult> {
      const ctx = Context.current();
      const beat = new HeartbeatState(ctx, spec, deps.heartbeatEveryMs ?? DEFAULT_HEARTBEAT_EVERY_MS);
      const store = openStore(spec.artifactRoot);
      let lease: GpuLease | undefined;
      let workDir: string | undefined;
      const attempt = attemptId(ctx);
      const prefix = stagePrefix(spec.runId, spec.stage);
      try {
        return await cancellable(ctx, () =>
          atEdge(async () => {
            // Fixed when the stage started: attempts on newer trainer code resume rather than call it stale.
            const cacheKey = spec.cacheKey ?? trainerStageKey(spec);
            const firstAttempt = ctx.info.attempt === 1;
            const reused = spec.force && firstAttempt ? undefined : await reusable(store, spec, cacheKey);
            if (reused) return reused;
            await claimStage(store, prefix, attempt);
            const fence = () => checkFence(store, prefix, attempt);

            beat.phase('fetching');
            const inputs = await Promise.all(spec.inputs.map((i) => fetchInput(deps, store, i.prefix)));
            const manifestInputs: ManifestInput[] = spec.inputs.map((i, n) => ({
              name: i.name,
              uri: store.uri(i.prefix),
              manifestSha256: inputs[n]?.manifestSha256 ?? '',
            }));

            beat.phase('waiting-for-gpu');
            lease = deps.gpus ? await deps.gpus.acquire(attempt, ctx.cancellationSignal) : undefined;
            beat.set({ device: lease?.device ?? 'cpu' });
            workDir = await attemptDir(deps.workDir, spec, cacheKey, attempt);
            const out = join(workDir, 'out');
            await mkdir(out, { recursive: true });

            // A forced first attempt starts over; every retry resumes.
            const resumeFrom = await resumableCheckpoint(
              store,
              prefix,
              cacheKey,
              spec.force && firstAttempt,
              spec.stage,
            );
            if (resumeFrom !== undefined) {
              await pinCheckpoint(store, prefix, attempt, resumeFrom);
              await downloadCheckpoint(store, prefix, out, resumeFrom);
              beat.set({ step: resumeFrom, resumedFrom: resumeFrom });
            }

            const configFile = join(workDir, 'config.json');
            await writeFile(configFile, JSON.stringify(spec.config, null, 2));
            const args = [
              ...trainerPrefix(deps),
              spec.command,
              '--config',
              configFile,
              ...spec.inputs.flatMap((i, n) => [`--${i.flag}`, inputs[n]?.dir ?? '']),
              '--output',
              out,
              ...(resumeFrom !== undefined ? ['--resume'] : []),
            ];
            const meta = {
              runId: spec.runId,
              stage: spec.stage,
              cacheKey,
              inputs: manifestInputs,
              config: spec.config,
              keep: spec.keepCheckpoints,
              attempt,
            };
            let losses: Record<string, number> = {};
            const stop = new AbortController();
            const onStop = () => stop.abort();
            ctx.cancellationSignal.addEventListener('abort', onStop, { once: true });
            deps.drain?.addEventListener('abort', onStop, { once: true });
            if (ctx.cancellationSignal.aborted || deps.drain?.aborted) stop.abort();
            beat.phase('training');
            let outcome: TrainerOutcome;
            try {
              outcome = await runTrainer({
                python: deps.trainer?.python ?? trainerPython(),
                args,
                env: { ...trainerEnv(), ...(lease?.env ?? {}) },
                signal: stop.signal,
                killGraceMs: deps.trainerKillGraceMs ?? DEFAULT_TRAINER_KILL_GRACE_MS,
                stallTimeoutMs: spec.stallTimeoutS * 1000,
                onLine: () => beat.progressed(),
                onEvent: async (event: TrainerEvent) => {
                  if (event.event === 'step') {
                    losses = { loss: event.loss, ...(event.losses ?? {}) };
                    beat.set({ step: event.step, loss: event.loss, losses: event.losses });
                  } else if (event.event === 'checkpoint') {
                    await fence();
                    beat.phase('uploading');
                    const uri = await uploadCheckpoint(store, prefix, out, event.step, meta);
                    beat.set({ step: event.step, lastCheckpoint: uri });
                    beat.phase('training');
                  } else if (event.event === 'done') beat.set({ step: event.step });
                },
              });
            } finally {
              ctx.cancellationSignal.removeEventListener('abort', onStop);
              deps.drain?.removeEventListener('abort', onStop);
            }
            if (outcome.kind !== 'done') throw failureOf(outcome, beat.get(), ctx, deps.drain);

            await fence();
            beat.phase('publishing');
            const writer = await beginArtifact(
              store,
              prefix,
              { stage: spec.stage, runId: spec.runId, cacheKey, inputs: manifestInputs, config: spec.config },
              { overwrite: true, attempt },
            );
            for (const dir of spec.publish.dirs) await writer.addLocalDir(join(out, dir), { under: dir });
            for (const file of spec.publish.files) await writer.addLocalFile(file, join(out, file));
            const committed = await writer.commit({
              ...losses,
              steps: beat.get().step,
              resumed_from_step: resumeFrom ?? 0,
            });
            await recordCacheEntry(store, committed);
            // Published: pins left by attempts that died (SIGKILL skips their finally) no longer hold anything.
            await clearPins(store, prefix);
            return stageResultOf(store, spec.artifactRoot, committed);
          }),
        );
      } finally {
        beat.stop();
        lease?.release();
        await unpinCheckpoint(store, prefix, attempt).catch(() => undefined);
        if (workDir) await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
        await store.close();
      }
    },
  };
}

/** Whatever stopped a cancelled attempt (a lease wait, a download), it is reported as a cancellation. */
async function cancellable<T>(ctx: Context, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (ctx.cancellationSignal.aborted && !(err instanceof CancelledFailure))
      throw new CancelledFailure(`cancelled: ${(err as Error).message}`);
    throw err;
  }
}

/** The run's committed output when its key matches; a StaleArtifactError when it does not (unless forced). */
async function reusable(
  store: ArtifactStore,
  spec: TrainerStageSpec,
  cacheKey: string,
): Promise<StageResult | undefined> {
  const prefix = stagePrefix(spec.runId, spec.stage);
  const check = await checkCommitted(store, prefix, cacheKey, {
    expected: { config: spec.config },
    forceStage: spec.stage,
  });
  if (check.state === 'match') return { ...(await stageResult(store, prefix)), reused: 'run' };
  if (check.state === 'mismatch' && !spec.force) throw check.error;
  return undefined;
}

async function stageResult(store: ArtifactStore, prefix: string): Promise<StageResult> {
  const read = await readManifest(store, prefix);
  return stageResultOf(store, store.rootUri, read);
}

export function stageResultOf(
  store: ArtifactStore,
  artifactRoot: string,
  committed: {
    prefix: string;
    manifestSha256: string;
    contentDigest: string;
    manifest: { cacheKey: string; stats: Record<string, unknown> };
  },
): StageResult {
  const stats = Object.fromEntries(
    Object.entries(committed.manifest.stats).filter((e): e is [string, number] => typeof e[1] === 'number'),
  );
  return {
    uri: store.uri(committed.prefix),
    artifactRoot,
    prefix: committed.prefix,
    manifestSha256: committed.manifestSha256,
    contentDigest: committed.contentDigest,
    cacheKey: committed.manifest.cacheKey,
    stats,
  };
}

/** A unique id per attempt: names its staging folder, its work dir, its fence and its pin. */
function attemptId(ctx: Context): string {
  const info = ctx.info;
  const safe = `${info.workflowExecution?.workflowId ?? 'standalone'}-${info.activityId}`.replace(
    /[^A-Za-z0-9._-]/g,
    '_',
  );
  return `${safe.slice(-80)}-a${info.attempt}-${randomBytes(4).toString('hex')}`;
}

function trainerPrefix(deps: StageDeps): string[] {
  return deps.trainer?.args ?? ['-m', 'cotmae_trainer'];
}

/**
 * The stage's fence: the newest attempt writes its id; an older one still running (a partitioned worker whose
 * attempt timed out) sees another id at its next upload and stops instead of writing over its successor.
 */
async function claimStage(store: ArtifactStore, prefix: string, attempt: string): Promise<void> {
  await store.put(
    prefix + FENCE_FILE,
    Buffer.from(
      JSON.stringify({ attempt, host: hostname(), pid: process.pid, at: new Date().toISOString() }),
    ),
  );
}

async function checkFence(store: ArtifactStore, prefix: string, attempt: string): Promise<void> {
  const body = await store.get(prefix + FENCE_FILE).catch(() => undefined);
  const owner = body ? (JSON.parse(body.toString('utf8')) as { attempt?: string }).attempt : undefined;
  if (owner !== attempt) throw new FencedError(store.uri(prefix), owner ?? 'none');
}

/**
 * A private work dir per attempt, under the stage's cache key: nothing local is ever shared between
 * attempts, runs or workers (two workers on one box included). Dirs left by dead processes are removed.
 */
async function attemptDir(
  workDir: string,
  spec: TrainerStageSpec,
  cacheKey: string,
  attempt: string,
): Promise<string> {
  const base = join(workDir, 'attempts');
  await mkdir(base, { recursive: true });
  await sweepDeadAttempts(base);
  const dir = join(base, `${spec.stage}-${cacheKey.slice(0, 16)}-${attempt}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'owner.json'), JSON.stringify({ host: hostname(), pid: process.pid }));
  return dir;
}

async function sweepDeadAttempts(base: string): Promise<void> {
  for (const name of await readdir(base).catch(() => [] as string[])) {
    const owner = await readFile(join(base, name, 'owner.json'), 'utf8')
      .then((t) => JSON.parse(t) as { host?: string; pid?: number })
      .catch(() => undefined);
    if (owner && owner.host === hostname() && typeof owner.pid === 'number' && !processAlive(owner.pid))
      await rm(join(base, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

const inputFetches = new Map<string, Promise<{ dir: string; manifestSha256: string }>>();

/**
 * A committed input in this worker's cache: `<workDir>/inputs/<content digest>/`, fetched (and verified)
 * once, into a temporary folder renamed into place, so concurrent attempts and processes never see half.
 */
function fetchInput(deps: StageDeps, store: ArtifactStore, prefix: string) {
  return readManifest(store, prefix).then((read) => {
    const key = `${read.contentDigest}`;
    let pending = inputFetches.get(key);
    if (!pending) {
      pending = (async () => {
        const dir = join(deps.workDir, 'inputs', key);
        const local = openStore(dir);
        const cached = await readManifest(local, '').catch(() => undefined);
        await local.close();
        if (cached?.contentDigest === read.contentDigest) return { dir, manifestSha256: read.manifestSha256 };
        const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
        await fetchArtifact(store, prefix, tmp);
        await rm(dir, { recursive: true, force: true });
        await rename(tmp, dir).catch(async (err) => {
          await rm(tmp, { recursive: true, force: true });
          throw err;
        });
        return { dir, manifestSha256: read.manifestSha256 };
      })();
      pending.catch(() => inputFetches.delete(key));
      inputFetches.set(key, pending);
    }
    return pending;
  });
}

/** How an attempt that did not finish is reported: retried, given up, or cancelled. */
function failureOf(
  outcome: Exclude<TrainerOutcome, { kind: 'done' }>,
  beat: TrainerHeartbeat,
  ctx: Context,
  drain: AbortSignal | undefined,
): Error {
  const at = `step ${beat.step}${beat.lastCheckpoint ? `, last checkpoint ${beat.lastCheckpoint}` : ''}`;
  switch (outcome.kind) {
    case 'bad-input':
      return ApplicationFailure.create({
        message: `trainer: ${outcome.message}`,
        type: 'TrainerBadInput',
        nonRetryable: true,
        details: [outcome.stderrTail],
      });
    case 'oom':
      return ApplicationFailure.create({
        message: `trainer: ${outcome.message}`,
        type: 'TrainerOutOfMemory',
        nonRetryable: true,
        details: [outcome.stderrTail],
      });
    case 'stalled':
      return ApplicationFailure.create({
        message: `trainer: ${outcome.message} (at ${at}); stopped, the next attempt resumes`,
        type: 'TrainerStalled',
        details: [outcome.stderrTail],
      });
    case 'interrupted':
      if (ctx.cancellationSignal.aborted) return new CancelledFailure(`cancelled at ${at}`);
      if (drain?.aborted)
        return ApplicationFailure.create({
          message: `worker shutting down: trainer checkpointed at ${at}; the next attempt resumes elsewhere`,
          type: 'WorkerShutdown',
        });
      return ApplicationFailure.create({
        message: `trainer interrupted at ${at}`,
        type: 'TrainerInterrupted',
      });
    default:
      if (ctx.cancellationSignal.aborted)
        return new CancelledFailure(`cancelled at ${at}: ${outcome.message}`);
      return ApplicationFailure.create({
        message: `trainer: ${outcome.message} (at ${at})`,
        type: 'TrainerFailed',
        details: [outcome.stderrTail],
      });
  }
}

/**
 * The attempt's heartbeat details, sent every few seconds — but only while the trainer makes progress: a
 * trainer silent for stall_timeout_s stops the heartbeats (and the watchdog stops the trainer).
 */
class HeartbeatState {
  private details: TrainerHeartbeat;
  private lastProgress = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ctx: Context,
    private readonly spec: TrainerStageSpec,
    everyMs: number,
  ) {
    const previous = ctx.info.heartbeatDetails as TrainerHeartbeat | undefined;
    const total = spec.config.max_steps;
    this.details = {
      phase: 'starting',
      step: previous?.step ?? 0,
      ...(typeof total === 'number' ? { total } : {}),
      worker: `${hostname()}:${process.pid}`,
    };
    this.send();
    this.timer = setInterval(() => this.tick(), everyMs);
    this.timer.unref();
  }

  get(): TrainerHeartbeat {
    return this.details;
  }

  set(update: Partial<TrainerHeartbeat>): void {
    this.details = { ...this.details, ...update };
    this.send();
  }

  phase(phase: TrainerHeartbeat['phase']): void {
    this.lastProgress = Date.now();
    this.set({ phase });
  }

  progressed(): void {
    this.lastProgress = Date.now();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const stalled =
      this.details.phase === 'training' && Date.now() - this.lastProgress > this.spec.stallTimeoutS * 1000;
    if (!stalled) this.send();
  }

  private send(): void {
    this.ctx.heartbeat(this.details);
  }
}
