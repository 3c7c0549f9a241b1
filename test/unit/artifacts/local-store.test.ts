import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LOCAL_TEMP_MARK, LocalStore, openStore } from '../../../lib/artifacts';
import { InvalidKeyError } from '../../../lib/errors';
import { collect, registerStoreSuite } from './store-suite';

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cotmae-local-store-'));
  roots.push(dir);
  return dir;
}

// The store root does not exist yet: the first write creates it.
registerStoreSuite('local directory', async () => openStore(path.join(await freshDir(), 'artifacts root')), {
  partSizeBytes: 5 * 1024 * 1024,
});

describe('local store specifics', () => {
  let root: string;
  let store: LocalStore;
  before(async () => {
    root = await freshDir();
    store = new LocalStore(root);
  });

  it('opens from a plain path, a relative path and a file:// URI (percent-encoded)', async () => {
    assert.equal(openStore(root).rootUri, `file://${root}/`);
    const spaced = openStore(`file://${path.join(root, 'with%20space')}`);
    assert.ok(spaced instanceof LocalStore);
    assert.equal(spaced.root, path.join(root, 'with space'));
    const rel = openStore('artifacts', { cwd: root });
    assert.ok(rel instanceof LocalStore);
    assert.equal(rel.root, path.join(root, 'artifacts'));
  });

  it('hides temp files from listings and sweeps them with deletePrefix', async () => {
    await store.put('t/a', 'a');
    const leftover = path.join(root, 't', `${LOCAL_TEMP_MARK}crashed`);
    await writeFile(leftover, 'half');
    assert.deepEqual(
      (await collect(store.list('t/'))).map((o) => o.key),
      ['t/a'],
    );
    await assert.rejects(store.put(`t/${LOCAL_TEMP_MARK}x`, 'x'), InvalidKeyError);
    assert.equal(await store.deletePrefix('t/'), 1);
    await assert.rejects(stat(path.join(root, 't')), { code: 'ENOENT' });
  });

  it('prunes empty folders on delete, up to (not including) the root', async () => {
    await store.put('p/q/r/s.txt', 's');
    await store.put('p/keep.txt', 'k');
    await store.delete('p/q/r/s.txt');
    await assert.rejects(stat(path.join(root, 'p', 'q')), { code: 'ENOENT' });
    assert.ok((await stat(path.join(root, 'p'))).isDirectory());
    await store.delete('p/keep.txt');
    assert.deepEqual(await readdir(root), []);
  });

  it('refuses a key that collides with a folder or a file (S3 allows both, a filesystem cannot)', async () => {
    await store.put('c/x', 'file');
    await assert.rejects(store.put('c/x/y', 'under a file'), InvalidKeyError);
    await store.put('d/x/y', 'nested');
    await assert.rejects(store.put('d/x', 'over a folder'), InvalidKeyError);
    assert.deepEqual(
      (await collect(store.list('c/'))).map((o) => o.key),
      ['c/x'],
    );
    assert.deepEqual(
      (await collect(store.list('d/'))).map((o) => o.key),
      ['d/x/y'],
    );
  });

  it('skips files whose names are not valid keys', async () => {
    await mkdir(path.join(root, 'odd'), { recursive: true });
    await writeFile(path.join(root, 'odd', 'back\\slash'), 'x');
    await store.put('odd/fine', 'y');
    assert.deepEqual(
      (await collect(store.list('odd/'))).map((o) => o.key),
      ['odd/fine'],
    );
  });
});
