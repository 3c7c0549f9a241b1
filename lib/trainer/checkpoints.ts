/**
 * Checkpoints of a training stage, locally and in the artifact store. The trainer writes
 * `<out>/checkpoints/step-NNNNNN/` and creates `COMPLETE` in it last; each one is uploaded as its own
 * committed artifact `<stage>/checkpoints/step-NNNNNN/` carrying the stage's cache key, so a retry on any
 * machine resumes from the newest one that made it to the store — and only if it was made from the same
 * inputs, config and code.
 *
 * Pins: an attempt that resumes from step S first writes `<stage>/checkpoints/pins/<attempt>.json`; pruning
 * never deletes a pinned step, so a presumed-dead attempt still running somewhere cannot delete the
 * checkpoint its successor is downloading.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ArtifactStore,
  beginArtifact,
  checkCommitted,
  fetchArtifact,
  joinPrefix,
  type ManifestInput,
  StaleArtifactError,
} from '../artifacts';

export const COMPLETE_MARKER = 'COMPLETE';
const STEP_DIR = /^step-(\d+)$/;

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

function checkpointsPrefix(stagePrefix: string): string {
  return joinPrefix(stagePrefix, 'checkpoints');
}

function pinKey(stagePrefix: string, attempt: string): string {
  return `${joinPrefix(checkpointsPrefix(stagePrefix), 'pins')}${attempt}.json`;
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
  const base = checkpointsPrefix(stagePrefix);
  const steps = new Set<number>();
  for await (const obj of store.list(base)) {
    const m = /^step-(\d+)\/manifest\.json$/.exec(obj.key.slice(base.length));
    if (m) steps.add(Number(m[1]));
  }
  return [...steps].sort((a, b) => a - b);
}

/** Steps pinned by attempts that resumed from them. */
export async function pinnedSteps(store: ArtifactStore, stagePrefix: string): Promise<Set<number>> {
  const base = joinPrefix(checkpointsPrefix(stagePrefix), 'pins');
  const steps = new Set<number>();
  for await (const obj of store.list(base)) {
    if (!obj.key.endsWith('.json')) continue;
    const pin = JSON.parse((await store.get(obj.key)).toString('utf8')) as { step?: unknown };
    if (typeof pin.step === 'number') steps.add(pin.step);
  }
  return steps;
}

export async function pinCheckpoint(
  store: ArtifactStore,
  stagePrefix: string,
  attempt: string,
  step: number,
): Promise<void> {
  await store.put(pinKey(stagePrefix, attempt), Buffer.from(JSON.stringify({ step, attempt })));
}

export async function unpinCheckpoint(
  store: ArtifactStore,
  stagePrefix: string,
  attempt: string,
): Promise<void> {
  await store.delete(pinKey(stagePrefix, attempt));
}

/** Drops every pin of the stage: called once its output is published (no attempt resumes any more). */
export async function clearPins(store: ArtifactStore, stagePrefix: string): Promise<void> {
  await store.deletePrefix(joinPrefix(checkpointsPrefix(stagePrefix), 'pins'));
}

export interface CheckpointMeta {
  runId: string;
  stage: string;
  /** The stage's cache key: a checkpoint is only ever resumed by an attempt expecting the same key. */
  cacheKey: string;
  inputs: ManifestInput[];
  config: unknown;
  /** Stored checkpoints kept after an upload (pinned ones are kept too). */
  keep: number;
  /** Staging id of the uploading attempt. */
  attempt: string;
}

/**
 * Finds the checkpoint to resume from: the newest stored one, if it was made with `cacheKey`. One made with
 * another key is stale (another config, corpus or code wrote this run's folder): a StaleArtifactError naming
 * both keys, unless `force`, which deletes every stored checkpoint of the stage.
 */
export async function resumableCheckpoint(
  store: ArtifactStore,
  stagePrefix: string,
  cacheKey: string,
  force: boolean,
  stage?: string,
): Promise<number | undefined> {
  const steps = await storedCheckpointSteps(store, stagePrefix);
  const newest = steps.at(-1);
  if (newest === undefined) return undefined;
  const prefix = joinPrefix(checkpointsPrefix(stagePrefix), checkpointName(newest));
  const check = await checkCommitted(store, prefix, cacheKey);
  if (check.state === 'match') return newest;
  if (!force && check.state === 'mismatch')
    throw new StaleArtifactError({
      uri: store.uri(prefix),
      recordedKey: check.recordedKey,
      expectedKey: cacheKey,
      stage,
    });
  for (const step of steps)
    await store.deletePrefix(joinPrefix(checkpointsPrefix(stagePrefix), checkpointName(step)));
  return undefined;
}

/** Downloads stored checkpoint `step` into `<outDir>/checkpoints/step-N/` (verified file by file). */
export async function downloadCheckpoint(
  store: ArtifactStore,
  stagePrefix: string,
  outDir: string,
  step: number,
): Promise<void> {
  const name = checkpointName(step);
  await fetchArtifact(
    store,
    joinPrefix(checkpointsPrefix(stagePrefix), name),
    join(outDir, 'checkpoints', name),
  );
}

/**
 * Uploads one complete local checkpoint as a committed artifact, then drops stored ones beyond `keep`
 * (never a pinned one). Returns the checkpoint's URI.
 */
export async function uploadCheckpoint(
  store: ArtifactStore,
  stagePrefix: string,
  outDir: string,
  step: number,
  meta: CheckpointMeta,
): Promise<string> {
  const name = checkpointName(step);
  const prefix = joinPrefix(checkpointsPrefix(stagePrefix), name);
  const existing = await checkCommitted(store, prefix, meta.cacheKey);
  if (existing.state !== 'match') {
    const writer = await beginArtifact(
      store,
      prefix,
      {
        stage: `${meta.stage}-checkpoint`,
        runId: meta.runId,
        cacheKey: meta.cacheKey,
        inputs: meta.inputs,
        config: { step },
      },
      { overwrite: existing.state === 'mismatch', attempt: meta.attempt },
    );
    await writer.addLocalDir(join(outDir, 'checkpoints', name));
    await writer.commit({ step });
  }
  await pruneCheckpoints(store, stagePrefix, meta.keep);
  return store.uri(prefix);
}

/** Deletes all but the newest `keep` stored checkpoints, sparing pinned ones. */
export async function pruneCheckpoints(
  store: ArtifactStore,
  stagePrefix: string,
  keep: number,
): Promise<number[]> {
  const stored = await storedCheckpointSteps(store, stagePrefix);
  const pinned = await pinnedSteps(store, stagePrefix);
  const doomed = stored
    .slice(0, Math.max(0, stored.length - Math.max(1, keep)))
    .filter((s) => !pinned.has(s));
  for (const old of doomed)
    await store.deletePrefix(joinPrefix(checkpointsPrefix(stagePrefix), checkpointName(old)));
  return doomed;
}
