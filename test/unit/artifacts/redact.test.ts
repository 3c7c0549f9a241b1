import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore, parseStoreUri, redactUri, resolveS3Settings } from '../../../lib/artifacts';
import { CommitConflictError, ConfigError, StaleArtifactError } from '../../../lib/errors';

const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRET';

describe('redactUri', () => {
  it('replaces userinfo in URIs with ***', () => {
    assert.equal(redactUri(`s3://AKIAKEY:${SECRET}@bucket/prefix/x`), 's3://***@bucket/prefix/x');
    assert.equal(redactUri('https://user:pass@host:8443/path?q=1'), 'https://***@host:8443/path?q=1');
    assert.equal(redactUri('https://token@github.com/org/repo'), 'https://***@github.com/org/repo');
    assert.equal(
      redactUri(`failed: "s3://K:${SECRET}@b/p" and 'https://u:p@h/x' twice`),
      `failed: "s3://***@b/p" and 'https://***@h/x' twice`,
    );
  });

  it('redacts credential query parameters (presigned URLs)', () => {
    assert.equal(
      redactUri('https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=abcdef&x=1'),
      'https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&x=1',
    );
  });

  it('leaves text without credentials unchanged', () => {
    for (const text of [
      's3://bucket/prefix/a@b.txt',
      's3://bucket/a:b@c',
      'http://127.0.0.1:9000/bucket/k@v',
      'file:///data/my%20dir/',
      '/plain/path/user:pass@x',
      'no uri here',
      'mailto:someone@example.com',
      '',
    ]) {
      assert.equal(redactUri(text), text, text);
    }
  });

  it('keeps credentials out of openStore / parseStoreUri / settings errors', () => {
    for (const uri of [
      `s3://AKIAKEY:${SECRET}@bucket/prefix`,
      `s3://AKIAKEY:${SECRET}@bucket`,
      `https://user:${SECRET}@host/x`,
      `file://user:${SECRET}@host/x`,
    ]) {
      for (const attempt of [() => parseStoreUri(uri), () => openStore(uri)]) {
        assert.throws(attempt, (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.key, 'artifacts');
          assert.ok(!err.message.includes(SECRET), err.message);
          assert.ok(!err.message.includes('AKIAKEY'), err.message);
          return true;
        });
      }
    }
    assert.throws(
      () => resolveS3Settings({ endpoint: `ftp://u:${SECRET}@host`, env: {} }),
      (err: unknown) => err instanceof ConfigError && !err.message.includes(SECRET),
    );
  });

  it('error classes built from a URI redact it', () => {
    const conflict = new CommitConflictError(`s3://K:${SECRET}@b/runs/r/`);
    assert.ok(!conflict.message.includes(SECRET));
    assert.equal(conflict.uri, 's3://***@b/runs/r/');
    const stale = new StaleArtifactError({
      uri: `s3://K:${SECRET}@b/runs/r/`,
      recordedKey: 'a'.repeat(64),
      expectedKey: 'b'.repeat(64),
    });
    assert.ok(!stale.message.includes(SECRET));
    assert.equal(stale.details.uri, 's3://***@b/runs/r/');
    assert.deepEqual(stale.details.differences, []);
  });
});
