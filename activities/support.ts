/** Plumbing shared by stage activities: their dependencies, temp dirs, periodic heartbeats. */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context } from '@temporalio/activity';
import type { GpuLeasePool } from '../lib/trainer/gpu-leases';

/** How the trainer is started: `python ...args <command> ...` (tests pass a stand-in program). */
export interface TrainerCommand {
  python: string;
  /** Arguments before the command name, e.g. ['-m', 'cotmae_trainer']. */
  args: string[];
}

/** What every stage activity factory receives from its worker. */
export interface StageDeps {
  /** Artifact root used when the workflow input names none (COTMAE_ARTIFACTS or the local default). */
  defaultArtifactRoot: string;
  /** Local scratch and cache space of this worker. */
  workDir: string;
  /** GPU workers: the devices trainings lease (one training per device). */
  gpus?: GpuLeasePool;
  /** Aborted when the worker starts shutting down: trainers checkpoint and stop at once. */
  drain?: AbortSignal;
  /** Default: the project's Python running `-m cotmae_trainer`. */
  trainer?: TrainerCommand;
  /** SIGTERM → SIGKILL grace for a trainer (default 90 s; a worker with a shorter shutdown grace lowers it). */
  trainerKillGraceMs?: number;
  /** How often running activities heartbeat (default 5 s; the heartbeat timeout is 60 s by default). */
  heartbeatEveryMs?: number;
}

export const DEFAULT_HEARTBEAT_EVERY_MS = 5_000;

/** Runs `body` in a fresh directory under `workDir/tmp`, removed afterwards whatever happens. */
export async function withTempDir<T>(
  workDir: string,
  prefix: string,
  body: (dir: string) => Promise<T>,
): Promise<T> {
  const parent = join(workDir, 'tmp');
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, prefix));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Heartbeats every `ms` while a long call runs (so a dead worker is noticed within the heartbeat timeout and
 * a cancellation is delivered within seconds even when the domain code reports no progress). `details`
 * gives what to send. Returns the stop function.
 */
export function heartbeatEvery(ctx: Context, ms: number, details?: () => unknown): () => void {
  const beat = () => ctx.heartbeat(details?.());
  beat();
  const timer = setInterval(beat, ms);
  timer.unref();
  return () => clearInterval(timer);
}
