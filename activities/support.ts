/** Plumbing shared by stage activities: their dependencies, temp dirs, periodic heartbeats. */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context } from '@temporalio/activity';

/** What every stage activity factory receives from its worker. */
export interface StageDeps {
  /** Artifact root used when the workflow input names none (COTMAE_ARTIFACTS or the local default). */
  defaultArtifactRoot: string;
  /** Local scratch and cache space of this worker. */
  workDir: string;
}

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
 * Heartbeats every `ms` while a long call runs (so a stuck or dead worker is noticed within the
 * heartbeat timeout even when the domain code reports no progress). Returns the stop function.
 */
export function heartbeatEvery(ctx: Context, ms: number): () => void {
  const timer = setInterval(() => ctx.heartbeat(), ms);
  timer.unref();
  return () => clearInterval(timer);
}
