/**
 * The shared artifact-store suite against a real S3-compatible server (moto, started here), plus what only
 * S3 has: multipart ETags, aborted multipart uploads, the raw client's streamed PutObject, bucket errors,
 * and the server's own lifecycle (stop, no orphans).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ensureBucket, findMotoServer, type S3Server, startS3Server } from '../../infra/s3';
import {
  beginArtifact,
  checkArtifactRoot,
  computeCacheKey,
  createS3Client,
  readArtifactFile,
  S3Store,
  type S3StoreOptions,
  verifyArtifact,
} from '../../lib/artifacts';
import { CommitConflictError, ConfigError } from '../../lib/errors';
import { pseudoRandom, readAll, registerStoreSuite, sha256 } from '../unit/artifacts/store-suite';

/** Passes one request through to the real S3 server (the test proxies below alter some of them). */
function forward(req: http.IncomingMessage, res: http.ServerResponse, target: URL): void {
  const upstream = http.request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  req.pipe(upstream);
}

const MIB = 1024 * 1024;
const PART = 5 * MIB;
const BUCKET = 'cotmae-test';

let server: S3Server;
let client: S3Client;
const stores: S3Store[] = [];

function storeOptions(): S3StoreOptions {
  return {
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    partSizeBytes: PART,
    queueSize: 2,
    maxAttempts: 3,
    env: {},
  };
}

before(async () => {
  server = await startS3Server();
  client = createS3Client(storeOptions());
  await ensureBucket(client, BUCKET);
  await ensureBucket(client, BUCKET); // idempotent
});

after(async () => {
  for (const s of stores) await s.close();
  client?.destroy();
  await server?.stop();
});

registerStoreSuite(
  's3 (moto server)',
  async () => {
    // a fresh prefix per suite run: runs sharing a bucket never see each other's keys
    const store = new S3Store(BUCKET, `suite-${randomBytes(4).toString('hex')}/`, storeOptions());
    return store;
  },
  { partSizeBytes: PART },
);

describe('s3 store specifics', () => {
  let store: S3Store;
  before(() => {
    store = new S3Store(BUCKET, `specific-${randomBytes(4).toString('hex')}`, storeOptions());
    stores.push(store);
  });

  it('really uploads 12 MiB as a 3-part multipart upload', async () => {
    const data = pseudoRandom(12 * MIB, 3);
    await store.put('mp.bin', Readable.from([data.subarray(0, 7 * MIB), data.subarray(7 * MIB)]));
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${store.prefix}mp.bin` }));
    assert.match(head.ETag ?? '', /-3"?$/, `multipart ETag expected, got ${head.ETag}`);
    assert.equal(head.ContentLength, data.length);
    assert.equal(sha256(await store.get('mp.bin')), sha256(data));
  });

  it('aborts the multipart upload when the source fails (no parts left behind)', async () => {
    const source = Readable.from(
      (async function* () {
        yield pseudoRandom(PART + MIB, 1);
        yield pseudoRandom(PART, 2);
        throw new Error('source broke on purpose');
      })(),
    );
    await assert.rejects(store.put('aborted.bin', source), /broke on purpose/);
    const uploads = await client.send(
      new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: store.prefix }),
    );
    assert.deepEqual(uploads.Uploads ?? [], []);
    assert.equal(await store.head('aborted.bin'), undefined);
  });

  it("the project's client stores a raw streamed PutObject byte for byte (aws-chunked trap)", async () => {
    const data = Buffer.concat([
      pseudoRandom(200_000, 8),
      Buffer.from('0\r\n\r\nx-amz-checksum-crc32:AAAA\r\n'),
    ]);
    const Key = `${store.prefix}raw-stream.bin`;
    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key,
        Body: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
        ContentLength: data.length,
      }),
    );
    const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
    const got = await readAll(res.Body as Readable);
    assert.equal(got.length, data.length);
    assert.ok(got.equals(data));
    assert.equal(await client.config.requestChecksumCalculation(), 'WHEN_REQUIRED');
    assert.equal(await client.config.responseChecksumValidation(), 'WHEN_REQUIRED');
  });

  it('maps a missing bucket to a ConfigError naming the bucket, never the credentials', async () => {
    const missing = new S3Store('no-such-bucket-cotmae', '', {
      ...storeOptions(),
      credentials: { accessKeyId: 'AKIDLEAKCHECK', secretAccessKey: 'SECRETLEAKCHECK' },
    });
    try {
      for (const attempt of [() => missing.get('x'), () => missing.put('x', 'y')]) {
        await assert.rejects(attempt(), (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, /no-such-bucket-cotmae/);
          assert.doesNotMatch(err.message, /LEAKCHECK/);
          return true;
        });
      }
    } finally {
      await missing.close();
    }
  });

  it('retries throttled and 5xx responses with backoff, up to maxAttempts', async () => {
    await store.put('retry.txt', 'survived');
    // A proxy in front of moto that answers 503 SlowDown to the first `failures` requests.
    let failures = 0;
    let requests = 0;
    const target = new URL(server.endpoint);
    const proxy = http.createServer((req, res) => {
      requests += 1;
      if (failures > 0) {
        failures -= 1;
        req.resume();
        res.writeHead(503, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>slow down</Message></Error>');
        return;
      }
      forward(req, res, target);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const address = proxy.address() as AddressInfo;
    const viaProxy = (maxAttempts: number) =>
      new S3Store(BUCKET, store.prefix, {
        ...storeOptions(),
        endpoint: `http://127.0.0.1:${address.port}`,
        maxAttempts,
      });
    const patient = viaProxy(3);
    const impatient = viaProxy(2);
    try {
      failures = 2;
      requests = 0;
      assert.equal((await patient.get('retry.txt')).toString(), 'survived');
      assert.equal(requests, 3);
      failures = 2;
      requests = 0;
      await assert.rejects(impatient.get('retry.txt'), (err: unknown) => (err as Error).name === 'SlowDown');
      assert.equal(requests, 2);
    } finally {
      await patient.close();
      await impatient.close();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

/** A proxy in front of moto that answers 501 NotImplemented to conditional PUTs (servers without If-None-Match). */
async function noConditionalPutsProxy(): Promise<{
  endpoint: string;
  refused: () => number;
  close: () => Promise<void>;
}> {
  const target = new URL(server.endpoint);
  let refused = 0;
  const proxy = http.createServer((req, res) => {
    if (req.method === 'PUT' && req.headers['if-none-match'] !== undefined) {
      refused += 1;
      req.resume();
      res.writeHead(501, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0"?><Error><Code>NotImplemented</Code><Message>no conditional writes</Message></Error>',
      );
      return;
    }
    forward(req, res, target);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    refused: () => refused,
    close: () => new Promise((resolve) => proxy.close(() => resolve())),
  };
}

const META = {
  stage: 'cas',
  runId: 'run-1',
  cacheKey: computeCacheKey({ stage: 'cas', inputs: [], config: {} }),
  config: {},
  code: { gitCommit: 'test', packageVersion: '0.0.0' },
};

describe('s3 create-only commits', () => {
  it('moto honours If-None-Match: * on PutObject (412 PreconditionFailed when the key exists)', async () => {
    const Key = `cas-raw-${randomBytes(4).toString('hex')}`;
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: 'first', IfNoneMatch: '*' }));
    await assert.rejects(
      client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: 'second', IfNoneMatch: '*' })),
      (err: unknown) =>
        (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412,
    );
    const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
    assert.equal((await readAll(res.Body as Readable)).toString(), 'first');
    const store = new S3Store(BUCKET, `cas-${randomBytes(4).toString('hex')}/`, storeOptions());
    stores.push(store);
    assert.equal(await store.putIfAbsent('k', 'x'), true);
    assert.equal(store.conditionalPutSupport, true);
  });

  it('falls back to put + read-back on a server that answers 501 to conditional puts', async () => {
    const proxy = await noConditionalPutsProxy();
    const store = new S3Store(BUCKET, `fallback-${randomBytes(4).toString('hex')}/`, {
      ...storeOptions(),
      endpoint: proxy.endpoint,
    });
    try {
      assert.equal(await store.putIfAbsent('once', 'first'), true);
      assert.equal(store.conditionalPutSupport, false);
      assert.equal(proxy.refused(), 1);
      assert.equal(await store.putIfAbsent('once', 'second'), false);
      assert.equal((await store.get('once')).toString(), 'first');
      assert.equal(proxy.refused(), 1, 'no more conditional puts once the server said 501');
      // the commit protocol on top: the second writer of a folder loses
      const a = await beginArtifact(store, 'runs/r/stage/', META, { attempt: 'a' });
      const b = await beginArtifact(store, 'runs/r/stage/', META, { attempt: 'b' });
      await a.writeFile('x', 'from a');
      await b.writeFile('x', 'from b');
      await a.commit();
      await assert.rejects(b.commit(), CommitConflictError);
      assert.equal((await readArtifactFile(store, 'runs/r/stage/', 'x')).toString(), 'from a');
      await verifyArtifact(store, 'runs/r/stage/');
    } finally {
      await store.close();
      await proxy.close();
    }
  });
});

describe('s3 artifact-root preflight', () => {
  it('accepts a usable root, returns its URI, and leaves no probe object', async () => {
    const prefix = `preflight-${randomBytes(4).toString('hex')}`;
    assert.equal(
      await checkArtifactRoot(`s3://${BUCKET}/${prefix}`, 'artifacts', { s3: storeOptions() }),
      `s3://${BUCKET}/${prefix}/`,
    );
    const store = new S3Store(BUCKET, '', storeOptions());
    stores.push(store);
    const left: string[] = [];
    for await (const o of store.list(prefix)) left.push(o.key);
    assert.deepEqual(left, []);
  });

  it('a bucket that does not exist is a ConfigError naming the key and the bucket, never the credentials', async () => {
    await assert.rejects(
      checkArtifactRoot('s3://no-such-bucket-cotmae/x', 'pipeline.artifacts', {
        s3: { ...storeOptions(), credentials: { accessKeyId: 'AKIDLEAK', secretAccessKey: 'SECRETLEAK' } },
      }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.key, 'pipeline.artifacts');
        assert.match(err.message, /bucket 'no-such-bucket-cotmae' does not exist/);
        assert.doesNotMatch(err.message, /LEAK/);
        return true;
      },
    );
  });
});

describe('moto server lifecycle', () => {
  it('finds moto_server via MOTO_SERVER, with an actionable error otherwise', () => {
    assert.throws(
      () => findMotoServer({ env: { MOTO_SERVER: '/nonexistent/moto_server' } }),
      (err: unknown) => err instanceof ConfigError && /make setup/.test(err.message),
    );
    assert.throws(
      () => findMotoServer({ env: { PATH: '' }, repoRoot: '/nonexistent' }),
      (err: unknown) => err instanceof ConfigError && /make setup/.test(err.message),
    );
  });

  it('stop() terminates the server', async () => {
    const s = await startS3Server();
    const res = await fetch(`${s.endpoint}/`);
    assert.equal(res.status, 200);
    await s.stop();
    assert.throws(() => process.kill(s.pid, 0), { code: 'ESRCH' });
    await s.stop(); // idempotent
  });

  it('leaves no orphan when the Node process that started it is SIGKILLed', {
    skip: process.platform !== 'linux',
  }, async () => {
    const infra = path.resolve(__dirname, '../../infra/s3.js');
    const script = `require(${JSON.stringify(infra)}).startS3Server().then((s) => { console.log(s.pid); setInterval(() => {}, 1000); })`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    for await (const chunk of child.stdout) {
      out += chunk.toString();
      if (out.includes('\n')) break;
    }
    const motoPid = Number(out.trim());
    assert.ok(motoPid > 0, `no pid printed: ${out}`);
    process.kill(motoPid, 0); // alive
    child.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      await delay(100);
      try {
        process.kill(motoPid, 0);
        // a zombie not yet reaped by its new parent still answers kill(0): check /proc state
        const stat = await import('node:fs/promises').then((fs) =>
          fs.readFile(`/proc/${motoPid}/stat`, 'utf8'),
        );
        alive = !/^\d+ \(.*\) Z/.test(stat);
      } catch {
        alive = false;
      }
    }
    if (alive) process.kill(motoPid, 'SIGKILL');
    assert.equal(alive, false, 'moto_server outlived its parent');
  });
});
