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
import { createS3Client, S3Store, type S3StoreOptions } from '../../lib/artifacts';
import { ConfigError } from '../../lib/errors';
import { pseudoRandom, readAll, registerStoreSuite, sha256 } from '../unit/artifacts/store-suite';

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
      const upstream = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(upstream);
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
