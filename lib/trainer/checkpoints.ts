/**
 * Checkpoints of a training run, locally and in the artifact store. The trainer writes
 * `<out>/checkpoints/step-NNNNNN/` and creates `COMPLETE` in it last; each one is uploaded as its own
 * committed artifact `<stage>/checkpoints/step-NNNNNN/`, so a retry on another machine resumes from the
 * newest one that made it to the store.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ArtifactStore,
  beginArtifact,
  computeCacheKey,
  fetchArtifact,
  isCommitted,
  joinPrefix,
  type ManifestInput,
} from '../artifacts';

export const COMPLETE_MARKER = 'COMPLETE';
const STEP_DIR = /^step-(\d+)$/;

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/** Steps of the complete checkpoints under `<outDir>/checkpoints`, ascending. */
export async function localCheckpointSteps(outDir: string): Promise<number[]> {
  const dir = join(outDir, 'checkpoints');
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const steps: number[] = [];
  for (const e of entries) {
    const m = STEP_DIR.exec(e.name);
    if (!m || !e.isDirectory()) continue;
    if (await stat(join(dir, e.name, COMPLETE_MARKER)).catch(() => undefined)) steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

/** Steps of the committed checkpoint artifacts under `<stagePrefix>checkpoints/`, ascending. */
export async function storedCheckpointSteps(store: ArtifactStore, stagePrefix: string): Promise<number[]> {
  const base = joinPrefix(stagePrefix, 'checkpoints');
  const steps = new Set<number>();
  for await (const obj of store.list(base)) {
    const m = /^step-(\d+)\/manifest\.json$/.exec(obj.key.slice(base.length));
    if (m) steps.add(Number(m[1]));
  }
  return [...steps].sort((a, b) => a - b);
}

/** Downloads the newest stored checkpoint unless a local one is at least as new; returns the step to resume from. */
export async function ensureLatestCheckpoint(
  store: ArtifactStore,
  stagePrefix: string,
  outDir: string,
): Promise<number | undefined> {
  const stored = (await storedCheckpointSteps(store, stagePrefix)).at(-1);
  const local = (await localCheckpointSteps(outDir)).at(-1);
  if (stored !== undefined && (local === undefined || local < stored)) {
    const name = checkpointName(stored);
    await fetchArtifact(
      store,
      joinPrefix(stagePrefix, 'checkpoints', name),
      join(outDir, 'checkpoints', name),
    );
  }
  return Math.max(stored ?? -1, local ?? -1) >= 0 ? Math.max(stored ?? -1, local ?? -1) : undefined;
}

/** Uploads one complete local checkpoint as a committed artifact, then drops stored ones beyond `keep`. */
export async function uploadCheckpoint(
  store: ArtifactStore,
  stagePrefix: string,
  outDir: string,
  step: number,
  meta: { runId: string; stage: string; inputs: ManifestInput[]; config: unknown; keep: number },
): Promise<string> {
  const name = checkpointName(step);
  const prefix = joinPrefix(stagePrefix, 'checkpoints', name);
  if (!(await isCommitted(store, prefix))) {
    const writer = await beginArtifact(
      store,
      prefix,
      {
        stage: `${meta.stage}-checkpoint`,
        runId: meta.runId,
        cacheKey: computeCacheKey({
          stage: `${meta.stage}-checkpoint`,
          inputs: meta.inputs,
          config: { step, config: meta.config },
        }),
        inputs: meta.inputs,
        config: { step },
      },
      { overwrite: true },
    );
    await writer.addLocalDir(join(outDir, 'checkpoints', name));
    await writer.commit({ step });
  }
  const stored = await storedCheckpointSteps(store, stagePrefix);
  for (const old of stored.slice(0, Math.max(0, stored.length - meta.keep)))
    await store.deletePrefix(joinPrefix(stagePrefix, 'checkpoints', checkpointName(old)));
  return store.uri(prefix);
}
