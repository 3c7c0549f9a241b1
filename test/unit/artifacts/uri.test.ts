import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  formatStoreUri,
  LocalStore,
  openStore,
  parseStoreUri,
  resolveS3Settings,
  S3Store,
} from '../../../lib/artifacts';
import { ConfigError } from '../../../lib/errors';

describe('store URIs', () => {
  it('parses s3:// URIs into bucket and folder prefix', () => {
    assert.deepEqual(parseStoreUri('s3://my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseStoreUri('s3://my-bucket/'), { kind: 's3', bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseStoreUri('s3://my-bucket/team/cotmae'), {
      kind: 's3',
      bucket: 'my-bucket',
      prefix: 'team/cotmae/',
    });
    assert.deepEqual(parseStoreUri('S3://my.bucket/a/'), { kind: 's3', bucket: 'my.bucket', prefix: 'a/' });
  });

  it('parses file:// URIs and plain paths', () => {
    assert.deepEqual(parseStoreUri('file:///data/artifacts'), { kind: 'local', dir: '/data/artifacts' });
    assert.deepEqual(parseStoreUri('file:///data/my%20dir/'), { kind: 'local', dir: '/data/my dir' });
    assert.deepEqual(parseStoreUri('file://localhost/data'), { kind: 'local', dir: '/data' });
    assert.deepEqual(parseStoreUri('/abs/dir'), { kind: 'local', dir: '/abs/dir' });
    assert.deepEqual(parseStoreUri('rel/dir', '/base'), { kind: 'local', dir: '/base/rel/dir' });
    assert.deepEqual(parseStoreUri('./.state/artifacts', '/base'), {
      kind: 'local',
      dir: '/base/.state/artifacts',
    });
    assert.deepEqual(parseStoreUri('rel', '/base'), { kind: 'local', dir: path.resolve('/base', 'rel') });
  });

  it('refuses malformed locations with a ConfigError naming the setting', () => {
    for (const bad of [
      '',
      '   ',
      's3://',
      's3://Upper',
      's3://ab',
      's3://bad_underscore/x',
      's3://bucket/../x',
      's3://bucket/a//b',
      's3://bucket/x?versionId=1',
      'gs://bucket/x',
      'http://host/x',
      'file://otherhost/x',
    ]) {
      assert.throws(
        () => parseStoreUri(bad),
        (err: unknown) => err instanceof ConfigError && err.key === 'artifacts',
        JSON.stringify(bad),
      );
    }
  });

  it('formats locations back to canonical URIs', () => {
    assert.equal(formatStoreUri({ kind: 's3', bucket: 'b-1', prefix: 'x/' }), 's3://b-1/x/');
    assert.equal(formatStoreUri({ kind: 's3', bucket: 'b-1', prefix: '' }), 's3://b-1/');
    assert.equal(formatStoreUri({ kind: 'local', dir: '/a b' }), 'file:///a%20b/');
    for (const uri of ['s3://b-1/x/y/', 'file:///a%20b/c/'])
      assert.equal(formatStoreUri(parseStoreUri(uri)), uri);
  });

  it('opens the matching backend; artifact URIs are store roots', async () => {
    const local = openStore('/tmp/cotmae-uri-test');
    assert.ok(local instanceof LocalStore);
    assert.equal(local.uri('runs/r/x.bin'), 'file:///tmp/cotmae-uri-test/runs/r/x.bin');
    assert.equal(local.uri('runs/r/'), 'file:///tmp/cotmae-uri-test/runs/r/');
    const s3 = openStore('s3://bucket-1/root', {
      s3: {
        endpoint: 'http://127.0.0.1:1',
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'SECRETEXAMPLE' },
      },
    });
    assert.ok(s3 instanceof S3Store);
    assert.equal(s3.rootUri, 's3://bucket-1/root/');
    assert.equal(s3.uri('runs/r/x'), 's3://bucket-1/root/runs/r/x');
    assert.equal(openStore(s3.uri('runs/r/')).rootUri, 's3://bucket-1/root/runs/r/');
    const described = (s3 as S3Store).describe();
    assert.ok(!described.includes('SECRETEXAMPLE') && !described.includes('AKIDEXAMPLE'), described);
    await s3.close();
  });
});

describe('S3 settings from options and env', () => {
  it('takes the endpoint from AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL; path-style by default with an endpoint', () => {
    const s = resolveS3Settings({
      env: { AWS_ENDPOINT_URL: 'http://general:1', AWS_ENDPOINT_URL_S3: 'http://s3only:2' },
    });
    assert.equal(s.endpoint, 'http://s3only:2');
    assert.equal(s.region, 'us-east-1');
    assert.equal(s.forcePathStyle, true);
    assert.equal(
      resolveS3Settings({ env: { AWS_ENDPOINT_URL: 'http://general:1' } }).endpoint,
      'http://general:1',
    );
    const aws = resolveS3Settings({ env: { AWS_REGION: 'eu-west-1' } });
    assert.equal(aws.endpoint, undefined);
    assert.equal(aws.region, 'eu-west-1');
    assert.equal(aws.forcePathStyle, false);
    assert.equal(aws.credentials, 'default provider chain');
  });

  it('honours S3_FORCE_PATH_STYLE, AWS_MAX_ATTEMPTS and explicit options', () => {
    assert.equal(
      resolveS3Settings({ env: { AWS_ENDPOINT_URL: 'http://h:1', S3_FORCE_PATH_STYLE: 'false' } })
        .forcePathStyle,
      false,
    );
    assert.equal(resolveS3Settings({ env: { S3_FORCE_PATH_STYLE: '1' } }).forcePathStyle, true);
    assert.throws(() => resolveS3Settings({ env: { S3_FORCE_PATH_STYLE: 'maybe' } }), ConfigError);
    assert.equal(resolveS3Settings({ env: {} }).maxAttempts, 5);
    assert.equal(
      resolveS3Settings({ env: { AWS_MAX_ATTEMPTS: '9' } }).maxAttempts,
      undefined,
      'left to the SDK',
    );
    assert.equal(resolveS3Settings({ env: { AWS_MAX_ATTEMPTS: '9' }, maxAttempts: 2 }).maxAttempts, 2);
    assert.throws(() => resolveS3Settings({ env: {}, maxAttempts: 0 }), ConfigError);
    const explicit = resolveS3Settings({
      env: { AWS_ENDPOINT_URL: 'http://env:1', AWS_REGION: 'x' },
      endpoint: 'https://opt:2',
      region: 'eu-central-1',
      forcePathStyle: false,
    });
    assert.deepEqual(
      [explicit.endpoint, explicit.region, explicit.forcePathStyle],
      ['https://opt:2', 'eu-central-1', false],
    );
  });

  it('refuses bad endpoints and too-small part sizes', () => {
    assert.throws(() => resolveS3Settings({ env: { AWS_ENDPOINT_URL: 'localhost:9000' } }), ConfigError);
    assert.throws(
      () => resolveS3Settings({ env: {}, endpoint: 'http://user:pass@host:1' }),
      /must not embed credentials/,
    );
    assert.throws(() => new S3Store('bucket-1', '', { env: {}, partSizeBytes: 1024 }), ConfigError);
  });
});
