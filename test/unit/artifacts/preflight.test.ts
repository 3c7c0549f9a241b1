import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { checkArtifactRoot } from '../../../lib/artifacts';
import { describeFsError } from '../../../lib/artifacts/preflight';
import { ConfigError } from '../../../lib/errors';

function configError(key: string, pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.key, key);
    assert.match(err.message, pattern);
    return true;
  };
}

/** Fails the test instead of hanging when a check does not settle. */
async function settlesWithin<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('checkArtifactRoot (local)', () => {
  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'cotmae-preflight-'));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('refuses /proc, /sys and /dev paths quickly, without creating anything', async () => {
    for (const p of ['/proc/x', '/proc/self/x/y', '/sys/x', '/dev/x', '/proc']) {
      await assert.rejects(
        settlesWithin(5000, checkArtifactRoot(p)),
        configError('artifacts', /pseudo file system/),
        p,
      );
    }
    assert.equal(existsSync('/proc/x'), false);
  });

  it('refuses a symlink that leads into /proc', async () => {
    const link = path.join(scratch, 'to-proc');
    await symlink('/proc', link);
    await assert.rejects(
      settlesWithin(5000, checkArtifactRoot(path.join(link, 'x'), 'storage.root')),
      configError('storage.root', /resolves to \/proc/),
    );
  });

  it('refuses a path under a regular file, and a regular file as the root', async () => {
    const file = path.join(scratch, 'plain-file');
    await writeFile(file, 'x');
    await assert.rejects(
      checkArtifactRoot(path.join(file, 'sub', 'dir')),
      configError('artifacts', /under a regular file/),
    );
    await assert.rejects(checkArtifactRoot(file), configError('artifacts', /is a regular file/));
    await assert.rejects(
      checkArtifactRoot(pathToFileURL(file).href, 'artifact_root'),
      configError('artifact_root', /is a regular file/),
    );
  });

  it('creates a missing parent chain one level at a time and leaves no probe behind', async () => {
    const root = path.join(scratch, 'a', 'b c', 'd', 'e', 'artifacts');
    const uri = await checkArtifactRoot(root);
    assert.equal(uri, `${pathToFileURL(root).href}/`);
    assert.ok((await stat(root)).isDirectory());
    assert.deepEqual(await readdir(root), [], 'the probe file is removed');
    // an existing writable root is fine, again and again; relative paths resolve against cwd
    assert.equal(await checkArtifactRoot(root), uri);
    assert.equal(
      await checkArtifactRoot('d/e/artifacts', 'artifacts', { cwd: path.join(scratch, 'a', 'b c') }),
      uri,
    );
  });

  it('bounds the walk up to an existing folder', async () => {
    const deep = path.join(scratch, 'deep', '1', '2', '3', '4', '5');
    await assert.rejects(
      checkArtifactRoot(deep, 'artifacts', { maxDepth: 3 }),
      configError('artifacts', /no existing folder within 3 levels/),
    );
    assert.equal(existsSync(path.join(scratch, 'deep')), false, 'nothing created');
  });

  it('refuses malformed locations on the given key', async () => {
    await assert.rejects(
      checkArtifactRoot('gs://bucket/x', 'my.key'),
      configError('my.key', /unsupported scheme/),
    );
    await assert.rejects(checkArtifactRoot('', 'my.key'), configError('my.key', /empty/));
  });

  it('refuses a read-only location (EROFS), even as root', async (t) => {
    const ro = process.env.COTMAE_TEST_RO_DIR;
    if (!ro) {
      t.skip('no read-only location to test with: set COTMAE_TEST_RO_DIR to a folder on a read-only mount');
      return;
    }
    await assert.rejects(checkArtifactRoot(ro), configError('artifacts', /read-only file system/));
    await assert.rejects(checkArtifactRoot(path.join(ro, 'new-sub')), configError('artifacts', /read-only/));
  });

  it('words file-system errors (EROFS, EACCES, ENOSPC)', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    assert.match(describeFsError(err('EROFS'), '/x'), /read-only file system/);
    assert.match(describeFsError(err('EACCES'), '/x'), /permission denied/);
    assert.match(describeFsError(err('ENOSPC'), '/x'), /no space left/);
  });
});

describe('checkArtifactRoot (S3, no server needed)', () => {
  const creds = { accessKeyId: 'AKIDPREFLIGHT', secretAccessKey: 'SECRETPREFLIGHT' };

  it('never hangs: an endpoint that accepts but never answers is a ConfigError after timeoutMs', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const started = Date.now();
      await assert.rejects(
        settlesWithin(
          10_000,
          checkArtifactRoot('s3://some-bucket/x', 'artifacts', {
            timeoutMs: 700,
            s3: { endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: creds, env: {} },
          }),
        ),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.key, 'artifacts');
          assert.doesNotMatch(err.message, /SECRETPREFLIGHT|AKIDPREFLIGHT/);
          return true;
        },
      );
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('an unreachable endpoint is a ConfigError at once (no retries)', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve)); // nothing listens there now
    const started = Date.now();
    await assert.rejects(
      checkArtifactRoot('s3://some-bucket/', 'artifacts', {
        s3: { endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: creds, env: {} },
      }),
      configError('artifacts', /cannot reach|HeadBucket/),
    );
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  });

  it('refuses credentials in the URI without repeating them', async () => {
    await assert.rejects(checkArtifactRoot('s3://AKIDX:SECRETX@bucket/p'), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.doesNotMatch(err.message, /SECRETX|AKIDX/);
      return true;
    });
  });
});

// A writable root in /dev/shm (a tmpfs) is storage, not a pseudo file system.
describe('checkArtifactRoot (/dev/shm)', { skip: !existsSync('/dev/shm') }, () => {
  it('accepts a folder in /dev/shm', async () => {
    const dir = path.join('/dev/shm', `cotmae-preflight-${process.pid}`);
    try {
      await checkArtifactRoot(path.join(dir, 'x'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
