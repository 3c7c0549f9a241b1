/**
 * The one artifact-store test suite, run against every backend (local-store.test.ts, s3-store.test.ts).
 * Everything is compared byte for byte (sha256): streamed puts (the aws-chunked trap), multipart uploads,
 * ranged gets, listings past 1000 keys, deletes, and the manifest commit/verify protocol on top.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type ArtifactStore,
  artifactObjectKey,
  beginArtifact,
  type CommittedArtifact,
  cacheEntryKey,
  checkCommitted,
  computeCacheKey,
  contentDigest,
  fetchArtifact,
  isCommitted,
  lookupCacheEntry,
  MANIFEST_FILE,
  MANIFEST_SCHEMA,
  MANIFEST_SCHEMA_V1,
  type ObjectInfo,
  openStore,
  readArtifactFile,
  readManifest,
  recordCacheEntry,
  verifyArtifact,
} from '../../../lib/artifacts';
import {
  ArtifactCorruptError,
  ArtifactExistsError,
  ArtifactMissingError,
  CommitConflictError,
  ConfigError,
  InvalidKeyError,
  StaleArtifactError,
} from '../../../lib/errors';

const MIB = 1024 * 1024;

export interface StoreSuiteOptions {
  /** The multipart part size the factory's store uses (the 12 MiB test spans several parts). */
  partSizeBytes: number;
}

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Deterministic pseudo-random bytes (fast, no crypto needed). */
export function pseudoRandom(bytes: number, seed = 1): Buffer {
  const buf = Buffer.allocUnsafe(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

/** Every byte value 0..255, repeated (includes \r\n, NUL, 0xff and invalid UTF-8). */
export function allByteValues(repeats = 257): Buffer {
  const buf = Buffer.alloc(256 * repeats);
  for (let i = 0; i < buf.length; i++) buf[i] = (i + Math.floor(i / 256)) & 0xff;
  return buf;
}

/** A stream of `data` in small uneven chunks, yielding to the event loop now and then. */
export function chunkedStream(data: Buffer, chunk = 64 * 1024 + 7): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < data.length; i += chunk) {
        if ((i / chunk) % 16 === 0) await delay(0);
        yield data.subarray(i, Math.min(i + chunk, data.length));
      }
    })(),
  );
}

/** A stream that emits `goodBytes` then fails. */
function failingStream(goodBytes: number): Readable {
  return Readable.from(
    (async function* () {
      const chunk = pseudoRandom(MIB, 7);
      for (let sent = 0; sent < goodBytes; sent += chunk.length)
        yield chunk.subarray(0, Math.min(chunk.length, goodBytes - sent));
      throw new Error('source broke on purpose');
    })(),
  );
}

/** Records the start and end of every write (puts and create-only puts), to check ordering (manifest last). */
function recordingStore(inner: ArtifactStore): { store: ArtifactStore; events: string[] } {
  const events: string[] = [];
  const store: ArtifactStore = {
    kind: inner.kind,
    rootUri: inner.rootUri,
    uri: (key) => inner.uri(key),
    put: async (key, body) => {
      events.push(`start ${key}`);
      const r = await inner.put(key, body);
      events.push(`end ${key}`);
      return r;
    },
    putFile: async (key, localPath) => {
      events.push(`start ${key}`);
      const r = await inner.putFile(key, localPath);
      events.push(`end ${key}`);
      return r;
    },
    get: (key) => inner.get(key),
    getStream: (key, range) => inner.getStream(key, range),
    getToFile: (key, localPath) => inner.getToFile(key, localPath),
    head: (key) => inner.head(key),
    list: (prefix) => inner.list(prefix),
    delete: (key) => inner.delete(key),
    deletePrefix: (prefix) => inner.deletePrefix(prefix),
    close: () => inner.close(),
  };
  const createOnly = inner.putIfAbsent?.bind(inner);
  if (createOnly) {
    store.putIfAbsent = async (key, body) => {
      events.push(`start ${key}`);
      const r = await createOnly(key, body);
      events.push(`end ${key}`);
      return r;
    };
  }
  return { store, events };
}

const META = (stage = 'unit-stage') => ({
  stage,
  runId: 'run-1',
  cacheKey: computeCacheKey({ stage, inputs: [], config: { a: 1 } }),
  config: { a: 1 },
  code: { gitCommit: 'test', packageVersion: '0.0.0' },
});

const BAD_KEYS = ['../x', '/abs', 'a//b', 'a\u0001b', 'a\\b', '', 'a/', 'a/../b', './a'];

/**
 * Registers the suite. `openFresh` returns an empty store (a new temp dir or a new S3 prefix); the suite
 * closes it at the end.
 */
export function registerStoreSuite(
  name: string,
  openFresh: () => Promise<ArtifactStore>,
  opts: StoreSuiteOptions,
) {
  describe(`artifact store: ${name}`, () => {
    let store: ArtifactStore;
    let scratch: string;

    before(async () => {
      store = await openFresh();
      scratch = await mkdtemp(path.join(tmpdir(), 'cotmae-store-suite-'));
    });
    after(async () => {
      await store?.close();
      if (scratch) await rm(scratch, { recursive: true, force: true });
    });

    it('puts and gets buffers, strings (UTF-8) and Uint8Arrays', async () => {
      const text = 'héllo wörld ✓ 𝄞\n';
      assert.deepEqual(await store.put('basic/text.txt', text), {
        key: 'basic/text.txt',
        bytes: Buffer.byteLength(text),
      });
      assert.equal((await store.get('basic/text.txt')).toString('utf8'), text);
      await store.put('basic/u8.bin', new Uint8Array([1, 2, 3]));
      assert.deepEqual([...(await store.get('basic/u8.bin'))], [1, 2, 3]);
      await store.put('basic/empty', Buffer.alloc(0));
      assert.equal((await store.get('basic/empty')).length, 0);
      assert.deepEqual(await store.head('basic/empty'), { key: 'basic/empty', bytes: 0 });
      assert.equal(store.uri('basic/text.txt'), `${store.rootUri}basic/text.txt`);
    });

    it('round-trips all 256 byte values through get, getStream and getToFile', async () => {
      const data = allByteValues();
      await store.put('binary/all-bytes.bin', data);
      assert.ok((await store.get('binary/all-bytes.bin')).equals(data));
      assert.ok((await readAll(await store.getStream('binary/all-bytes.bin'))).equals(data));
      const local = path.join(scratch, 'dl', 'all-bytes.bin');
      assert.deepEqual(await store.getToFile('binary/all-bytes.bin', local), {
        key: 'binary/all-bytes.bin',
        bytes: data.length,
      });
      assert.ok((await readFile(local)).equals(data));
      assert.deepEqual(await store.head('binary/all-bytes.bin'), {
        key: 'binary/all-bytes.bin',
        bytes: data.length,
      });
    });

    it('stores a streamed Readable byte for byte (no aws-chunked framing inside the object)', async () => {
      const data = Buffer.concat([allByteValues(), pseudoRandom(300_000, 3)]);
      const info = await store.put('stream/small.bin', chunkedStream(data, 4093));
      assert.equal(info.bytes, data.length);
      assert.deepEqual(await store.head('stream/small.bin'), { key: 'stream/small.bin', bytes: data.length });
      const got = await store.get('stream/small.bin');
      assert.equal(got.length, data.length);
      assert.equal(sha256(got), sha256(data));
      // a stream of one chunk, and an empty stream
      await store.put('stream/one-chunk.bin', Readable.from([Buffer.from('x\r\ny')]));
      assert.equal((await store.get('stream/one-chunk.bin')).toString('latin1'), 'x\r\ny');
      await store.put('stream/empty.bin', Readable.from([]));
      assert.deepEqual(await store.head('stream/empty.bin'), { key: 'stream/empty.bin', bytes: 0 });
    });

    it('uploads 12 MiB across several parts (streamed and from a file) and reads it back identically', async () => {
      assert.ok(12 * MIB > 2 * opts.partSizeBytes, 'the object must span at least 3 parts');
      const data = pseudoRandom(12 * MIB, 42);
      const digest = sha256(data);
      const info = await store.put('multipart/stream.bin', chunkedStream(data));
      assert.equal(info.bytes, data.length);
      assert.equal(sha256(await store.get('multipart/stream.bin')), digest);
      assert.equal(sha256(await readAll(await store.getStream('multipart/stream.bin'))), digest);

      const local = path.join(scratch, 'big.bin');
      await writeFile(local, data);
      assert.deepEqual(await store.putFile('multipart/file.bin', local), {
        key: 'multipart/file.bin',
        bytes: data.length,
      });
      const back = path.join(scratch, 'big-back.bin');
      await store.getToFile('multipart/file.bin', back);
      assert.equal(sha256(await readFile(back)), digest);
      // a large Buffer body takes the multipart path too
      await store.put('multipart/buffer.bin', data);
      assert.equal(sha256(await store.get('multipart/buffer.bin')), digest);
    });

    it('serves byte ranges: first byte, middle, last byte, whole, across part boundaries, clamped end', async () => {
      const data = pseudoRandom(12 * MIB, 42);
      await store.put('range/big.bin', data);
      const range = async (start: number, end: number) =>
        readAll(await store.getStream('range/big.bin', { start, end }));
      assert.ok((await range(0, 1)).equals(data.subarray(0, 1)));
      assert.ok((await range(1000, 2000)).equals(data.subarray(1000, 2000)));
      assert.ok((await range(data.length - 1, data.length)).equals(data.subarray(data.length - 1)));
      assert.equal(sha256(await range(0, data.length)), sha256(data));
      const p = opts.partSizeBytes;
      assert.ok((await range(p - 3, p + 3)).equals(data.subarray(p - 3, p + 3)));
      assert.ok((await range(data.length - 10, data.length + 1000)).equals(data.subarray(data.length - 10)));
      assert.equal((await range(5, 5)).length, 0);
      await assert.rejects(range(data.length, data.length + 1), RangeError);
      await assert.rejects(range(10, 5), RangeError);
      await assert.rejects(range(-1, 5), RangeError);
      await assert.rejects(store.getStream('range/missing.bin', { start: 0, end: 1 }), ArtifactMissingError);
      await assert.rejects(store.getStream('range/missing.bin', { start: 0, end: 0 }), ArtifactMissingError);
    });

    it('reports missing keys: head → undefined, get/getStream/getToFile → ArtifactMissingError', async () => {
      assert.equal(await store.head('missing/nope.bin'), undefined);
      assert.equal(await store.head('basic'), undefined, 'a folder is not an object');
      await assert.rejects(store.get('missing/nope.bin'), ArtifactMissingError);
      await assert.rejects(store.getStream('missing/nope.bin'), ArtifactMissingError);
      const dest = path.join(scratch, 'missing', 'nope.bin');
      await assert.rejects(store.getToFile('missing/nope.bin', dest), ArtifactMissingError);
      await assert.rejects(stat(dest), { code: 'ENOENT' });
    });

    it('overwrites a key in place', async () => {
      await store.put('over/x', 'first version, longer');
      await store.put('over/x', 'second');
      assert.equal((await store.get('over/x')).toString(), 'second');
      assert.deepEqual(await store.head('over/x'), { key: 'over/x', bytes: 6 });
    });

    it('lists more than 1000 keys, in order, by raw prefix', async () => {
      const keys = Array.from({ length: 1005 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < keys.length) {
            const key = keys[next++] as string;
            await store.put(key, key);
          }
        }),
      );
      await store.put('many-sibling', 'x');
      await store.put('manyz/a', 'x');
      const all = await collect(store.list('many/'));
      assert.equal(all.length, 1005);
      assert.deepEqual(
        all.map((o) => o.key),
        keys,
      );
      assert.ok(all.every((o) => o.bytes === 9));
      assert.equal((await collect(store.list('many'))).length, 1007);
      assert.deepEqual(
        (await collect(store.list('many/100'))).map((o) => o.key),
        ['many/1000', 'many/1001', 'many/1002', 'many/1003', 'many/1004'],
      );
      assert.deepEqual(await collect(store.list('nothing-here/')), []);
      const everything = await collect(store.list());
      assert.ok(everything.length >= 1007);
      assert.ok(everything.some((o) => o.key === 'manyz/a'));
    });

    it('deletes keys and prefixes (idempotently) and refuses an empty prefix', async () => {
      await store.put('del/a', 'a');
      await store.put('del/sub/b', 'b');
      await store.put('del-keep', 'k');
      await store.delete('del/a');
      assert.equal(await store.head('del/a'), undefined);
      await store.delete('del/a'); // absent: fine
      await store.delete('del/never-existed');
      assert.equal(await store.deletePrefix('del/'), 1);
      assert.deepEqual(await collect(store.list('del/')), []);
      assert.equal((await store.get('del-keep')).toString(), 'k');
      assert.equal(await store.deletePrefix('many/'), 1005);
      assert.deepEqual(await collect(store.list('many/')), []);
      assert.equal((await collect(store.list('many'))).length, 2);
      assert.equal(await store.deletePrefix('many/'), 0);
      await assert.rejects(store.deletePrefix(''), InvalidKeyError);
    });

    it('leaves nothing behind when a streamed put fails midway (even past the first part)', async () => {
      await assert.rejects(
        store.put('failed/stream.bin', failingStream(opts.partSizeBytes + MIB)),
        /broke on purpose/,
      );
      assert.equal(await store.head('failed/stream.bin'), undefined);
      assert.deepEqual(await collect(store.list('failed/')), []);
      // an existing object survives a failed overwrite
      await store.put('failed/keep.bin', 'old');
      await assert.rejects(store.put('failed/keep.bin', failingStream(1000)), /broke on purpose/);
      assert.equal((await store.get('failed/keep.bin')).toString(), 'old');
    });

    it('never exposes a partial object to readers while a slow write is in progress', async () => {
      const data = pseudoRandom(2 * MIB, 9);
      await store.put('atomic/x.bin', 'old');
      const slow = Readable.from(
        (async function* () {
          for (let i = 0; i < data.length; i += 256 * 1024) {
            await delay(20);
            yield data.subarray(i, i + 256 * 1024);
          }
        })(),
      );
      let done = false;
      const writing = store.put('atomic/x.bin', slow).finally(() => {
        done = true;
      });
      const seen = new Set<string>();
      while (!done) {
        const got = await store.get('atomic/x.bin');
        seen.add(
          got.toString('latin1') === 'old'
            ? 'old'
            : sha256(got) === sha256(data)
              ? 'new'
              : `partial:${got.length}`,
        );
        assert.deepEqual(
          (await collect(store.list('atomic/'))).map((o) => o.key),
          ['atomic/x.bin'],
        );
        await delay(5);
      }
      await writing;
      assert.equal(sha256(await store.get('atomic/x.bin')), sha256(data));
      assert.deepEqual(
        [...seen].filter((s) => s.startsWith('partial')),
        [],
      );
    });

    it('rejects bad keys in every method before any I/O', async () => {
      for (const key of BAD_KEYS) {
        await assert.rejects(store.put(key, 'x'), InvalidKeyError, `put ${JSON.stringify(key)}`);
        await assert.rejects(store.get(key), InvalidKeyError, `get ${JSON.stringify(key)}`);
        await assert.rejects(store.head(key), InvalidKeyError, `head ${JSON.stringify(key)}`);
        await assert.rejects(store.getStream(key), InvalidKeyError, `getStream ${JSON.stringify(key)}`);
        await assert.rejects(store.delete(key), InvalidKeyError, `delete ${JSON.stringify(key)}`);
        await assert.rejects(store.getToFile(key, path.join(scratch, 'bad')), InvalidKeyError);
      }
      await assert.rejects(collect(store.list('../')), InvalidKeyError);
      await assert.rejects(store.deletePrefix('/abs/'), InvalidKeyError);
      assert.throws(() => store.uri('../x'), InvalidKeyError);
    });

    describe('manifests', () => {
      it('commit writes manifest.json last, create-only; an uncommitted folder is refused', async () => {
        const { store: rec, events } = recordingStore(store);
        const prefix = 'runs/run-1/unit-stage/';
        const writer = await beginArtifact(rec, prefix, META(), { attempt: 'attempt-1' });
        assert.equal(writer.attempt, 'attempt-1');
        await writer.writeFile('a.txt', 'alpha\n');
        await writer.writeFile('data/b.bin', chunkedStream(allByteValues(40), 1000));
        const localDir = path.join(scratch, 'src-dir');
        await mkdir(path.join(localDir, 'nested'), { recursive: true });
        await writeFile(path.join(localDir, 'nested', 'c.bin'), pseudoRandom(70_000, 5));
        await writeFile(path.join(localDir, 'd.txt'), 'delta');
        await writer.addLocalDir(localDir, { under: 'local' });
        await writer.addLocalFile('single.bin', path.join(localDir, 'd.txt'));

        // not committed yet: files exist (staged), but the artifact does not
        assert.equal(await isCommitted(store, prefix), false);
        await assert.rejects(readManifest(store, prefix), ArtifactMissingError);
        await assert.rejects(verifyArtifact(store, prefix), ArtifactMissingError);
        await assert.rejects(fetchArtifact(store, prefix, path.join(scratch, 'early')), ArtifactMissingError);
        await assert.rejects(readArtifactFile(store, prefix, 'a.txt'), ArtifactMissingError);
        // every byte is staged under the attempt's own folder, none at the logical paths
        assert.deepEqual(
          (await collect(store.list(prefix))).map((o) => o.key.slice(prefix.length)),
          [
            '_staged/attempt-1/a.txt',
            '_staged/attempt-1/data/b.bin',
            '_staged/attempt-1/local/d.txt',
            '_staged/attempt-1/local/nested/c.bin',
            '_staged/attempt-1/single.bin',
          ],
        );

        const committed = await writer.commit({ documents: 3 });
        assert.equal(committed.uri, store.uri(prefix));
        const manifestKey = `${prefix}${MANIFEST_FILE}`;
        const lastStart = events.lastIndexOf(`start ${manifestKey}`);
        assert.equal(lastStart, events.length - 2, `manifest put must be last: ${events.join(', ')}`);
        assert.equal(events[lastStart + 1], `end ${manifestKey}`);
        for (let i = 0; i < lastStart; i++) assert.ok(!events[i]?.endsWith(MANIFEST_FILE));
        assert.equal(events.filter((e) => e.startsWith('start')).length, 6);
        assert.equal(events.filter((e) => e.startsWith('end')).length, 6);

        assert.equal(await isCommitted(store, prefix), true);
        const read = await readManifest(store, prefix.slice(0, -1)); // with or without the trailing '/'
        assert.equal(read.manifestSha256, committed.manifestSha256);
        assert.equal(read.manifestSha256, sha256(await store.get(manifestKey)));
        assert.equal(read.contentDigest, committed.contentDigest);
        const m = read.manifest;
        assert.equal(m.schema, 'cotmae.manifest/v2');
        assert.equal(m.schema, MANIFEST_SCHEMA);
        assert.equal(m.contentDigest, contentDigest(m.files));
        assert.equal(m.stage, 'unit-stage');
        assert.equal(m.runId, 'run-1');
        assert.deepEqual(m.stats, { documents: 3 });
        assert.deepEqual(m.config, { a: 1 });
        assert.deepEqual(
          m.files.map((f) => f.path),
          ['a.txt', 'data/b.bin', 'local/d.txt', 'local/nested/c.bin', 'single.bin'],
        );
        const a = m.files.find((f) => f.path === 'a.txt');
        assert.deepEqual(a, {
          path: 'a.txt',
          bytes: 6,
          sha256: sha256('alpha\n'),
          object: '_staged/attempt-1/a.txt',
        });
        for (const f of m.files) {
          assert.equal(artifactObjectKey(read, f.path), `${prefix}_staged/attempt-1/${f.path}`);
          assert.equal(sha256(await store.get(artifactObjectKey(read, f.path))), f.sha256);
          assert.equal(sha256(await readArtifactFile(store, prefix, f.path)), f.sha256);
        }
        assert.throws(() => artifactObjectKey(read, 'nope.txt'), ArtifactMissingError);

        await verifyArtifact(store, prefix);
        const dest = path.join(scratch, 'fetched');
        const fetched = await fetchArtifact(store, prefix, dest);
        assert.equal(fetched.manifestSha256, committed.manifestSha256);
        for (const f of m.files) assert.equal(sha256(await readFile(path.join(dest, f.path))), f.sha256);
        assert.ok(!(await readdir(dest)).some((n) => n.includes('tmp') || n === '_staged'));
        // the local copy is itself a committed artifact with the same content (files at their paths)
        const local = await verifyArtifact(openStore(dest), '');
        assert.equal(local.contentDigest, committed.contentDigest);
        assert.ok(local.manifest.files.every((f) => f.object === undefined));
        assert.deepEqual(
          { ...local.manifest, files: [] },
          { ...m, files: [] },
          'the local manifest is the same, apart from object locations',
        );
        // and the artifact's URI is a store root
        if (store.kind === 'local') await verifyArtifact(openStore(committed.uri), '');
      });

      it('detects tampered files (content, size, missing), naming the file', async () => {
        const prefix = 'runs/run-1/tamper/';
        const writer = await beginArtifact(store, prefix, META('tamper'));
        await writer.writeFile('ok.txt', 'fine');
        await writer.writeFile('victim.bin', pseudoRandom(10_000, 11));
        await writer.commit();
        const read = await verifyArtifact(store, prefix);
        const victim = artifactObjectKey(read, 'victim.bin');

        const original = await store.get(victim);
        const flipped = Buffer.from(original);
        flipped[5000] = (flipped[5000] ?? 0) ^ 1;
        await store.put(victim, flipped); // same size, different content
        await verifyArtifact(store, prefix, { sizesOnly: true }); // sizes cannot see it
        await assert.rejects(verifyArtifact(store, prefix), (err: unknown) => {
          assert.ok(err instanceof ArtifactCorruptError);
          assert.match(err.message, /victim\.bin: sha256/);
          return true;
        });
        await assert.rejects(readArtifactFile(store, prefix, 'victim.bin'), /victim\.bin: sha256/);
        const dest = path.join(scratch, 'tampered');
        await assert.rejects(fetchArtifact(store, prefix, dest), /victim\.bin: sha256/);
        await assert.rejects(stat(path.join(dest, 'victim.bin')), { code: 'ENOENT' });
        await assert.rejects(stat(path.join(dest, MANIFEST_FILE)), { code: 'ENOENT' });

        await store.put(victim, original.subarray(0, 9999)); // truncated
        await assert.rejects(
          verifyArtifact(store, prefix, { sizesOnly: true }),
          /victim\.bin: 9999 bytes, manifest says 10000/,
        );

        await store.delete(victim);
        await assert.rejects(
          verifyArtifact(store, prefix),
          /victim\.bin: listed in the manifest but missing/,
        );
        // a file at the logical path does not stand in for the missing object
        await store.put(`${prefix}victim.bin`, original);
        await assert.rejects(
          verifyArtifact(store, prefix),
          /victim\.bin: listed in the manifest but missing/,
        );

        await store.put(`${prefix}${MANIFEST_FILE}`, '{"schema": "cotmae.manifest/v2", "files": [');
        await assert.rejects(readManifest(store, prefix), ArtifactCorruptError);
        const good = await readManifestOf(store, 'runs/run-1/unit-stage/');
        const evil = { ...good, files: [{ path: '../evil', bytes: 1, sha256: sha256('x') }] };
        await store.put(`${prefix}${MANIFEST_FILE}`, JSON.stringify(evil));
        await assert.rejects(fetchArtifact(store, prefix, path.join(scratch, 'evil')), /invalid file path/);
        const escaping = {
          ...good,
          files: [{ path: 'x', bytes: 1, sha256: sha256('x'), object: '../../x' }],
        };
        escaping.contentDigest = contentDigest(escaping.files);
        await store.put(`${prefix}${MANIFEST_FILE}`, JSON.stringify(escaping));
        await assert.rejects(readManifest(store, prefix), /invalid object key/);
        const reserved = { ...good, files: [{ path: '_staged/a/x', bytes: 1, sha256: sha256('x') }] };
        reserved.contentDigest = contentDigest(reserved.files);
        await store.put(`${prefix}${MANIFEST_FILE}`, JSON.stringify(reserved));
        await assert.rejects(readManifest(store, prefix), /invalid file path/);
        const lying = { ...good, contentDigest: 'f'.repeat(64) };
        await store.put(`${prefix}${MANIFEST_FILE}`, JSON.stringify(lying));
        await assert.rejects(readManifest(store, prefix), /contentDigest .* does not match its files/);
      });

      it('refuses to overwrite a committed artifact unless asked; overwrite un-commits first, then cleans up', async () => {
        const prefix = 'runs/run-1/twice/';
        const first = await beginArtifact(store, prefix, META('twice'), { attempt: 'one' });
        await first.writeFile('x', 'one');
        await first.writeFile('only-in-first', 'old');
        const c1 = await first.commit();
        await assert.rejects(beginArtifact(store, prefix, META('twice')), ArtifactExistsError);
        const second = await beginArtifact(store, prefix, META('twice'), { overwrite: true, attempt: 'two' });
        assert.equal(await isCommitted(store, prefix), false, 'overwrite un-commits before writing');
        await second.writeFile('x', 'two');
        const c = await second.commit();
        assert.equal((await readManifest(store, prefix)).manifestSha256, c.manifestSha256);
        assert.notEqual(c.contentDigest, c1.contentDigest);
        assert.equal((await readArtifactFile(store, prefix, 'x')).toString(), 'two');
        await assert.rejects(readArtifactFile(store, prefix, 'only-in-first'), ArtifactMissingError);
        // the replaced artifact's objects are gone
        assert.deepEqual(
          (await collect(store.list(prefix))).map((o) => o.key.slice(prefix.length)),
          ['_staged/two/x', MANIFEST_FILE],
        );
        await assert.rejects(second.commit(), /called twice/);
        await assert.rejects(second.writeFile('y', 'late'), /already committed/);
      });

      it('two writers racing for one folder: exactly one commits, the other gets CommitConflictError', async () => {
        for (let round = 0; round < 6; round++) {
          const prefix = `runs/run-1/race-${round}/`;
          const writers = await Promise.all(
            ['a', 'b', 'c'].map((attempt) => beginArtifact(store, prefix, META('race'), { attempt })),
          );
          for (const [i, w] of writers.entries()) {
            await w.writeFile('out.txt', `writer ${i}`);
            await w.writeFile(`own-${i}.txt`, `only ${i}`);
          }
          const results = await Promise.allSettled(writers.map((w) => w.commit({ round })));
          const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
          assert.equal(won.length, 1, `round ${round}: exactly one winner, got ${won.length}`);
          const winner = won[0] as number;
          for (const [i, r] of results.entries()) {
            if (i === winner) continue;
            assert.equal(r.status, 'rejected');
            const err = (r as PromiseRejectedResult).reason;
            assert.ok(err instanceof CommitConflictError, String(err));
            assert.equal(err.type, 'CommitConflict');
            assert.equal(err.retryable, false);
            assert.match(err.message, new RegExp(`race-${round}/`));
            await assert.rejects(writers[i]?.commit() as Promise<unknown>, CommitConflictError);
          }
          const read = await verifyArtifact(store, prefix);
          const committed = (results[winner] as PromiseFulfilledResult<CommittedArtifact>).value;
          assert.equal(read.manifestSha256, committed.manifestSha256);
          assert.equal((await readArtifactFile(store, prefix, 'out.txt')).toString(), `writer ${winner}`);
          // only the winner's objects remain: the losers removed their own staged files
          const attempt = ['a', 'b', 'c'][winner];
          assert.deepEqual(
            (await collect(store.list(prefix))).map((o) => o.key.slice(prefix.length)),
            [`_staged/${attempt}/out.txt`, `_staged/${attempt}/own-${winner}.txt`, MANIFEST_FILE],
          );
        }
      });

      it('a writer that loses after the winner committed gets CommitConflictError, not corruption', async () => {
        const prefix = 'runs/run-1/late/';
        const slow = await beginArtifact(store, prefix, META('late'), { attempt: 'slow' });
        await slow.writeFile('x', 'slow');
        const fast = await beginArtifact(store, prefix, META('late'), { attempt: 'fast' });
        await fast.writeFile('x', 'fast');
        await fast.commit(); // sweeps the slow attempt's staged files
        await assert.rejects(slow.commit(), CommitConflictError);
        assert.equal((await readArtifactFile(store, prefix, 'x')).toString(), 'fast');
        await verifyArtifact(store, prefix);
      });

      it('a commit() retried after its answer was lost adopts its own manifest', async () => {
        const prefix = 'runs/run-1/lost-answer/';
        let dropAnswer = true;
        const flaky: ArtifactStore = Object.create(store);
        flaky.putIfAbsent = async (key, body) => {
          const created = await (store.putIfAbsent
            ? store.putIfAbsent(key, body)
            : store.put(key, body).then(() => true));
          if (dropAnswer && key.endsWith(MANIFEST_FILE)) {
            dropAnswer = false;
            throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
          }
          return created;
        };
        const writer = await beginArtifact(flaky, prefix, META('lost-answer'), { attempt: 'once' });
        await writer.writeFile('x', 'payload');
        await assert.rejects(writer.commit(), /socket hang up/);
        const committed = await writer.commit(); // the retry finds its own manifest
        assert.equal(committed.manifestSha256, (await readManifest(store, prefix)).manifestSha256);
        assert.equal((await readArtifactFile(store, prefix, 'x')).toString(), 'payload');
        // another attempt with the same files is still a conflict (its objects are its own)
        const twin = 'runs/run-1/lost-answer-2/';
        const a = await beginArtifact(store, twin, META('lost-answer'), { attempt: 'a' });
        const b = await beginArtifact(store, twin, META('lost-answer'), { attempt: 'b' });
        await a.writeFile('x', 'payload');
        await b.writeFile('x', 'payload');
        const won = await a.commit();
        await assert.rejects(b.commit(), CommitConflictError);
        assert.equal((await readManifest(store, twin)).manifestSha256, won.manifestSha256);
      });

      it('a successful commit sweeps the leftovers of crashed attempts', async () => {
        const prefix = 'runs/run-1/crashed/';
        const crashed = await beginArtifact(store, prefix, META('crashed'), { attempt: 'crashed' });
        await crashed.writeFile('big.bin', pseudoRandom(100_000, 3));
        await crashed.writeFile('deep/er.txt', 'x'); // never committed: the process "died"
        const retry = await beginArtifact(store, prefix, META('crashed'));
        await retry.writeFile('big.bin', pseudoRandom(100_000, 3));
        const c = await retry.commit();
        assert.deepEqual(
          (await collect(store.list(prefix))).map((o) => o.key.slice(prefix.length)),
          [`_staged/${retry.attempt}/big.bin`, MANIFEST_FILE],
        );
        // same files, other attempt and time: same content digest, other manifest digest
        const again = await beginArtifact(store, 'runs/run-2/crashed/', {
          ...META('crashed'),
          runId: 'run-2',
        });
        await again.writeFile('big.bin', pseudoRandom(100_000, 3));
        const c2 = await again.commit();
        assert.equal(c2.contentDigest, c.contentDigest);
        assert.notEqual(c2.manifestSha256, c.manifestSha256);
      });

      it('lists the files of nested committed artifacts (shards) without copying them', async () => {
        const stage = 'runs/run-1/nested/';
        const shards: string[] = [];
        for (const i of [0, 1]) {
          const shardPrefix = `${stage}shards/0000${i}/`;
          const w = await beginArtifact(store, shardPrefix, META('nested-shard'));
          await w.writeFile('part.jsonl', `shard ${i}\n`);
          await w.writeFile('sub/meta.json', `{"i":${i}}`);
          await w.commit();
          shards.push(shardPrefix);
        }
        const build = async (attempt: string, overwrite = false) => {
          const parent = await beginArtifact(store, stage, META('nested'), { attempt, overwrite });
          await parent.writeFile('stats.json', '{}');
          // the explicit API ...
          parent.recordArtifact(await readManifest(store, shards[0] as string));
          // ... and the spread of a nested manifest's entries (object relative to the shard folder)
          for (const f of (await readManifest(store, shards[1] as string)).manifest.files)
            parent.recordFile({ ...f, path: `shards/00001/${f.path}` });
          return parent.commit();
        };
        const c = await build('p1');
        const objects = Object.fromEntries(c.manifest.files.map((f) => [f.path, f.object]));
        const shard1 = await readManifest(store, shards[1] as string);
        assert.equal(
          objects['shards/00001/part.jsonl'],
          `shards/00001/${shard1.manifest.files.find((f) => f.path === 'part.jsonl')?.object}`,
        );
        await verifyArtifact(store, stage);
        const dest = path.join(scratch, 'nested');
        await fetchArtifact(store, stage, dest);
        assert.equal(await readFile(path.join(dest, 'shards', '00001', 'part.jsonl'), 'utf8'), 'shard 1\n');
        assert.equal(
          await readFile(path.join(dest, 'shards', '00000', 'sub', 'meta.json'), 'utf8'),
          '{"i":0}',
        );
        // overwriting the parent keeps the shards' objects (they belong to committed nested artifacts)
        await build('p2', true);
        await verifyArtifact(store, stage);
        for (const s of shards) await verifyArtifact(store, s);
        // an artifact not below the folder cannot be recorded
        const other = await beginArtifact(store, 'runs/run-1/elsewhere/', META('x'));
        assert.throws(() => other.recordArtifact(shard1), InvalidKeyError);
      });

      it('reads v1 manifests (files at their paths, content digest computed)', async () => {
        const prefix = 'runs/run-1/legacy/';
        await store.put(`${prefix}a.txt`, 'alpha');
        await store.put(`${prefix}sub/b.bin`, pseudoRandom(5000, 1));
        const files = [
          { path: 'a.txt', bytes: 5, sha256: sha256('alpha') },
          { path: 'sub/b.bin', bytes: 5000, sha256: sha256(pseudoRandom(5000, 1)) },
        ];
        const v1 = {
          schema: MANIFEST_SCHEMA_V1,
          stage: 'legacy',
          runId: 'run-1',
          cacheKey: 'c'.repeat(64),
          inputs: [],
          config: null,
          code: { gitCommit: 'old', packageVersion: '0.0.1' },
          files,
          stats: {},
          createdAt: '2026-01-01T00:00:00.000Z',
        };
        const body = `${JSON.stringify(v1, null, 2)}\n`;
        await store.put(`${prefix}${MANIFEST_FILE}`, body);
        const read = await verifyArtifact(store, prefix);
        assert.equal(read.manifest.schema, 'cotmae.manifest/v1');
        assert.equal(read.manifest.contentDigest, undefined);
        assert.equal(read.contentDigest, contentDigest(files));
        assert.equal((await readArtifactFile(store, prefix, 'a.txt')).toString(), 'alpha');
        const dest = path.join(scratch, 'legacy');
        await fetchArtifact(store, prefix, dest);
        assert.equal(await readFile(path.join(dest, MANIFEST_FILE), 'utf8'), body, 'byte for byte');
        // v1 cannot carry v2 fields
        await store.put(
          `${prefix}${MANIFEST_FILE}`,
          JSON.stringify({ ...v1, contentDigest: read.contentDigest }),
        );
        await assert.rejects(readManifest(store, prefix), ArtifactCorruptError);
      });

      it('validates file paths, refuses to commit after a failed write, checks recorded files', async () => {
        const prefix = 'runs/run-1/paths/';
        const writer = await beginArtifact(store, prefix, META('paths'));
        for (const bad of ['../x', '/abs', 'a//b', 'a\u0001b', MANIFEST_FILE, '_staged/x', '_staged']) {
          await assert.rejects(writer.writeFile(bad, 'x'), InvalidKeyError, bad);
        }
        assert.throws(
          () => writer.recordFile({ path: '_staged/y', bytes: 1, sha256: sha256('y') }),
          InvalidKeyError,
        );
        await writer.writeFile('dup', 'x');
        await assert.rejects(writer.writeFile('dup', 'y'), /written twice/);
        await writer.writeFile('nested/manifest.json', '{}'); // only the top-level name is reserved
        await writer.writeFile('nested/_staged/ok', '{}'); // only the top-level folder is reserved
        await assert.rejects(writer.writeFile('broken', failingStream(1000)), /broke on purpose/);
        await assert.rejects(writer.commit(), /broke on purpose/);
        assert.equal(await isCommitted(store, prefix), false);
        await writer.writeFile('broken', 'fixed on retry'); // a successful rewrite clears the failure
        // recordFile adopts a file already in the store; commit checks its size
        await store.put(`${prefix}adopted.bin`, 'adopted');
        writer.recordFile({ path: 'adopted.bin', bytes: 7, sha256: sha256('adopted') });
        await store.put(`${prefix}elsewhere/obj`, 'moved');
        writer.recordFile({
          path: 'renamed.txt',
          bytes: 5,
          sha256: sha256('moved'),
          object: 'elsewhere/obj',
        });
        writer.recordFile({ path: 'wrong-size.bin', bytes: 99, sha256: sha256('x') });
        await store.put(`${prefix}wrong-size.bin`, 'x');
        await assert.rejects(writer.commit(), /wrong-size\.bin: the store holds 1 bytes but 99 were written/);
        assert.equal(await isCommitted(store, prefix), false);
        await assert.rejects(
          beginArtifact(store, 'runs/run-1/badconfig/', { ...META(), config: { x: Number.NaN } }),
          ConfigError,
        );
        await assert.rejects(
          beginArtifact(store, 'runs/run-1/badattempt/', META(), { attempt: 'a/b' }),
          ConfigError,
        );
      });

      it('recorded files keep their object; readers follow it', async () => {
        const prefix = 'runs/run-1/recorded/';
        await store.put(`${prefix}elsewhere/obj`, 'moved');
        const writer = await beginArtifact(store, prefix, META('recorded'));
        writer.recordFile({
          path: 'renamed.txt',
          bytes: 5,
          sha256: sha256('moved'),
          object: 'elsewhere/obj',
        });
        writer.recordFile({ path: 'plain.txt', bytes: 5, sha256: sha256('plain'), object: 'plain.txt' });
        await store.put(`${prefix}plain.txt`, 'plain');
        const c = await writer.commit();
        assert.deepEqual(c.manifest.files, [
          { path: 'plain.txt', bytes: 5, sha256: sha256('plain') },
          { path: 'renamed.txt', bytes: 5, sha256: sha256('moved'), object: 'elsewhere/obj' },
        ]);
        assert.equal((await readArtifactFile(store, prefix, 'renamed.txt')).toString(), 'moved');
        await verifyArtifact(store, prefix);
      });
    });

    describe('create-only writes', () => {
      it('putIfAbsent creates once; racing callers: exactly one wins', async (t) => {
        if (!store.putIfAbsent) return t.skip('the store has no putIfAbsent');
        assert.equal(await store.putIfAbsent('cas/one', 'first'), true);
        assert.equal(await store.putIfAbsent('cas/one', 'second'), false);
        assert.equal((await store.get('cas/one')).toString(), 'first');
        for (let round = 0; round < 5; round++) {
          const key = `cas/race-${round}`;
          const results = await Promise.all(
            Array.from({ length: 8 }, (_, i) => store.putIfAbsent?.(key, `writer ${i}`)),
          );
          assert.equal(results.filter((r) => r === true).length, 1, `round ${round}: ${results}`);
          const winner = results.indexOf(true);
          assert.equal((await store.get(key)).toString(), `writer ${winner}`);
        }
        assert.deepEqual(
          (await collect(store.list('cas/'))).map((o) => o.key),
          ['cas/one', ...Array.from({ length: 5 }, (_, i) => `cas/race-${i}`)],
          'no temp files left behind',
        );
      });
    });

    describe('checked reuse', () => {
      it('checkCommitted: absent, match, mismatch with a StaleArtifactError saying what differs', async () => {
        const prefix = 'runs/run-1/reuse/';
        const meta = {
          stage: 'reuse',
          runId: 'run-1',
          inputs: [{ name: 'corpus', uri: 's3://b/c/', manifestSha256: 'a'.repeat(64) }],
          config: { max_len: 256, seed: 1 },
          code: { gitCommit: 'abc', packageVersion: '0.1.0' },
        };
        const key = computeCacheKey({ stage: 'reuse', inputs: meta.inputs, config: meta.config });
        assert.deepEqual(await checkCommitted(store, prefix, key), { state: 'absent' });
        const w = await beginArtifact(store, prefix, { ...meta, cacheKey: key });
        await w.writeFile('f.bin', pseudoRandom(1000, 2));
        await w.commit();
        const match = await checkCommitted(store, prefix, key, { verify: 'full' });
        assert.equal(match.state, 'match');

        const expected = {
          stage: 'reuse',
          inputs: [{ name: 'corpus', manifestSha256: 'b'.repeat(64) }],
          config: { max_len: 512, seed: 1 },
          code: { gitCommit: 'def', packageVersion: '0.1.0' },
        };
        const other = computeCacheKey({ stage: 'reuse', inputs: expected.inputs, config: expected.config });
        const check = await checkCommitted(store, prefix, other, { expected, forceStage: 'prepare-corpus' });
        assert.equal(check.state, 'mismatch');
        if (check.state !== 'mismatch') return;
        assert.equal(check.recordedKey, key);
        assert.deepEqual(check.differences, ['inputs.corpus', 'config.max_len', 'code.gitCommit']);
        const err = check.error;
        assert.ok(err instanceof StaleArtifactError);
        assert.equal(err.type, 'StaleArtifact');
        assert.equal(err.retryable, false);
        assert.ok(err.message.includes(store.uri(prefix)), err.message);
        assert.ok(err.message.includes(key.slice(0, 12)) && err.message.includes(other.slice(0, 12)));
        assert.match(err.message, /differs in inputs\.corpus, config\.max_len, code\.gitCommit/);
        assert.match(err.message, /start a new run id, or pass --force prepare-corpus/);
        assert.equal(err.details.recordedKey, key);
        assert.equal(err.details.expectedKey, other);
        // without `expected`, it still names both keys
        const bare = await checkCommitted(store, prefix, other);
        assert.equal(bare.state, 'mismatch');
        if (bare.state === 'mismatch') assert.match(bare.error.message, /--force reuse/);

        // verify: a truncated file fails the sizes check of a match
        const read = await readManifest(store, prefix);
        await store.put(artifactObjectKey(read, 'f.bin'), pseudoRandom(999, 2));
        await assert.rejects(checkCommitted(store, prefix, key, { verify: 'sizes' }), ArtifactCorruptError);
      });
    });

    describe('cache index', () => {
      const commitKeyed = async (prefix: string, key: string, content: string) => {
        const w = await beginArtifact(
          store,
          prefix,
          { ...META('cached'), cacheKey: key },
          { overwrite: true },
        );
        await w.writeFile('data.txt', content);
        return w.commit();
      };

      it('records and looks up entries; stale entries are removed', async () => {
        const key = sha256('cache-key-1');
        assert.equal(await lookupCacheEntry(store, key), undefined);
        const c = await commitKeyed('runs/run-1/cached/', key, 'payload');
        const entry = await recordCacheEntry(store, c);
        assert.deepEqual(entry, {
          key,
          stage: 'cached',
          prefix: 'runs/run-1/cached/',
          uri: store.uri('runs/run-1/cached/'),
          manifestSha256: c.manifestSha256,
          contentDigest: c.contentDigest,
          runId: 'run-1',
          createdAt: c.manifest.createdAt,
        });
        assert.deepEqual(JSON.parse((await store.get(cacheEntryKey(key))).toString()), entry);
        assert.equal(cacheEntryKey(key), `cache/${key}.json`);
        assert.deepEqual(await lookupCacheEntry(store, key), entry);
        assert.deepEqual(await lookupCacheEntry(store, key, { verify: 'sizes' }), entry);

        // re-committed with the same key: the entry is refreshed
        const c2 = await commitKeyed('runs/run-1/cached/', key, 'payload, again');
        const refreshed = await lookupCacheEntry(store, key);
        assert.equal(refreshed?.manifestSha256, c2.manifestSha256);
        assert.equal(
          JSON.parse((await store.get(cacheEntryKey(key))).toString()).manifestSha256,
          c2.manifestSha256,
        );

        // truncated file: the quick sizes check catches it, the entry goes
        const read = await readManifest(store, 'runs/run-1/cached/');
        await store.put(artifactObjectKey(read, 'data.txt'), 'short');
        assert.ok(await lookupCacheEntry(store, key), 'without verify the manifest is trusted');
        assert.equal(await lookupCacheEntry(store, key, { verify: 'sizes' }), undefined);
        assert.equal(await store.head(cacheEntryKey(key)), undefined, 'stale entry removed');

        // the artifact re-committed with another key: stale
        await recordCacheEntry(store, await commitKeyed('runs/run-1/cached/', key, 'payload'));
        await commitKeyed('runs/run-1/cached/', sha256('another key'), 'other');
        assert.equal(await lookupCacheEntry(store, key), undefined);
        assert.equal(await store.head(cacheEntryKey(key)), undefined);

        // the artifact deleted: stale
        const key3 = sha256('cache-key-3');
        await recordCacheEntry(store, await commitKeyed('runs/run-3/cached/', key3, 'three'));
        await store.deletePrefix('runs/run-3/cached/');
        assert.equal(await lookupCacheEntry(store, key3), undefined);
        assert.equal(await store.head(cacheEntryKey(key3)), undefined);

        // garbage entry: removed
        const key4 = sha256('cache-key-4');
        await store.put(cacheEntryKey(key4), 'not json');
        assert.equal(await lookupCacheEntry(store, key4), undefined);
        assert.equal(await store.head(cacheEntryKey(key4)), undefined);

        assert.throws(() => cacheEntryKey('../x'), ConfigError);
        await assert.rejects(lookupCacheEntry(store, 'nothex'), ConfigError);
      });
    });
  });
}

async function readManifestOf(store: ArtifactStore, prefix: string) {
  return (await readManifest(store, prefix)).manifest;
}
