/**
 * Stored checkpoints: uploads carry the stage's cache key, resuming only takes a checkpoint made with the
 * expected key (another key is a StaleArtifactError naming both, or wiped with force), and pruning never
 * deletes a checkpoint an attempt has pinned because it may be resuming from it.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openStore, StaleArtifactError } from '../../../lib/artifacts';
import {
  checkpointName,
  pinCheckpoint,
  pruneCheckpoints,
  resumableCheckpoint,
  storedCheckpointSteps,
  unpinCheckpoint,
  uploadCheckpoint,
} from '../../../lib/trainer/checkpoints';

const KEY_A = 'a'.repeat(64);
const KEY_B = 'b'.repeat(64);
const STAGE = 'runs/r1/pretrain/';

async function localCheckpoint(out: string, step: number): Promise<void> {
  const dir = join(out, 'checkpoints', checkpointName(step));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'state.json'), JSON.stringify({ step }));
  await writeFile(join(dir, 'COMPLETE'), '');
}

function meta(cacheKey: string, keep: number) {
  return { runId: 'r1', stage: 'pretrain', cacheKey, inputs: [], config: {}, keep, attempt: 'att-1' };
}

describe('stored checkpoints', () => {
  it('prunes to `keep` but spares a pinned step, until it is unpinned', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
    const store = openStore(join(dir, 'store'));
    const out = join(dir, 'out');
    for (const step of [10, 20]) {
      await localCheckpoint(out, step);
      await uploadCheckpoint(store, STAGE, out, step, meta(KEY_A, 1));
    }
    assert.deepEqual(await storedCheckpointSteps(store, STAGE), [20]);
    await pinCheckpoint(store, STAGE, 'successor', 20);
    for (const step of [30, 40]) {
      await localCheckpoint(out, step);
      await uploadCheckpoint(store, STAGE, out, step, meta(KEY_A, 1));
    }
    assert.deepEqual(await storedCheckpointSteps(store, STAGE), [20, 40], 'pinned step 20 survived pruning');
    await unpinCheckpoint(store, STAGE, 'successor');
    assert.deepEqual(await pruneCheckpoints(store, STAGE, 1), [20]);
    assert.deepEqual(await storedCheckpointSteps(store, STAGE), [40]);
    await store.close();
  });

  it('resumes only from a checkpoint made with the expected key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
    const store = openStore(join(dir, 'store'));
    const out = join(dir, 'out');
    await localCheckpoint(out, 50);
    await uploadCheckpoint(store, STAGE, out, 50, meta(KEY_A, 2));
    assert.equal(await resumableCheckpoint(store, STAGE, KEY_A, false), 50);
    await assert.rejects(
      resumableCheckpoint(store, STAGE, KEY_B, false),
      (err: unknown) =>
        err instanceof StaleArtifactError &&
        err.message.includes(KEY_A.slice(0, 12)) &&
        err.message.includes(KEY_B.slice(0, 12)),
    );
    assert.equal(await resumableCheckpoint(store, STAGE, KEY_B, true), undefined, 'forced: start over');
    assert.deepEqual(await storedCheckpointSteps(store, STAGE), [], 'the other key’s checkpoints are gone');
    await store.close();
  });
});
