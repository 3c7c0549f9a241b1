import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, rename, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openCorpusSource } from '../../../lib/datasets/source';
import { SHARED_DATA, withTmp } from '../corpus/helpers';

/** What `sha256sum` over the sorted files, piped into sha256sum, prints (the documented digest). */
async function shellStyleDigest(dir: string, names: string[]): Promise<string> {
  const sorted = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let text = '';
  for (const name of sorted) {
    text += `${createHash('sha256')
      .update(await readFile(join(dir, name)))
      .digest('hex')}  ${name}\n`;
  }
  return createHash('sha256').update(text).digest('hex');
}

describe('openCorpusSource: content digest of a local source', () => {
  async function corpusCopy(dir: string): Promise<string> {
    const src = join(dir, 'cranfield');
    await cp(join(SHARED_DATA, 'cranfield'), src, { recursive: true });
    return src;
  }

  it('is the sha256sum-style digest of the files, ignoring dot-files and manifest.json', async () => {
    await withTmp(async (dir) => {
      const src = await corpusCopy(dir);
      const opened = await openCorpusSource(src);
      const names = opened.files.map((f) => f.name);
      assert.ok(names.includes('qrels/test.tsv') && names.includes('corpus.jsonl'));
      assert.equal(opened.digest, await shellStyleDigest(src, names));
      await writeFile(join(src, '.DS_Store'), 'x');
      await writeFile(join(src, 'manifest.json'), '{}');
      assert.equal((await openCorpusSource(src)).digest, opened.digest);
      assert.equal((await openCorpusSource(`file://${src}`)).digest, opened.digest);
    });
  });

  it('is kept by a touch, changed by a one-byte edit and by a rename', async () => {
    await withTmp(async (dir) => {
      const src = await corpusCopy(dir);
      const before = (await openCorpusSource(src)).digest;
      const future = new Date(Date.now() + 3_600_000);
      await utimes(join(src, 'corpus.jsonl'), future, future);
      assert.equal((await openCorpusSource(src)).digest, before, 'touch');

      const body = await readFile(join(src, 'queries.jsonl'));
      const edited = Buffer.from(body);
      const at = edited.indexOf('a');
      edited[at] = 'b'.charCodeAt(0);
      await writeFile(join(src, 'queries.jsonl'), edited);
      const afterEdit = (await openCorpusSource(src)).digest;
      assert.notEqual(afterEdit, before, 'edit');
      await writeFile(join(src, 'queries.jsonl'), body);
      assert.equal((await openCorpusSource(src)).digest, before, 'edit undone');

      await rename(join(src, 'qrels', 'test.tsv'), join(src, 'qrels', 'dev.tsv'));
      assert.notEqual((await openCorpusSource(src)).digest, before, 'rename');
    });
  });

  it('digests a single-file source under its base name; digest: false skips the read', async () => {
    await withTmp(async (dir) => {
      const src = await corpusCopy(dir);
      const file = join(src, 'corpus.jsonl');
      const one = await openCorpusSource(file);
      assert.deepEqual(
        one.files.map((f) => f.name),
        ['corpus.jsonl'],
      );
      assert.equal(one.digest, await shellStyleDigest(src, ['corpus.jsonl']));
      assert.equal((await openCorpusSource(src, { digest: false })).digest, '');
    });
  });

  it('stops on abort with an AbortError', async () => {
    await assert.rejects(openCorpusSource(join(SHARED_DATA, 'cranfield'), { signal: AbortSignal.abort() }), {
      name: 'AbortError',
    });
  });

  it('gives every local file a locator another process can open', async () => {
    await withTmp(async (dir) => {
      const src = await corpusCopy(dir);
      await mkdir(join(src, 'sub'));
      await writeFile(join(src, 'sub', 'x.txt'), 'x');
      const { files } = await openCorpusSource(src, { digest: false });
      for (const f of files) assert.deepEqual(f.locator, { kind: 'local', path: join(src, f.name) });
    });
  });
});
