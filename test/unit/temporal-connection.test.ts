import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError } from '../../lib/errors';
import {
  DEFAULT_TEMPORAL_ADDRESS,
  describeTemporalConnection,
  temporalConnectionOptionsFromEnv,
} from '../../lib/temporal/connection';

const dir = mkdtempSync(join(tmpdir(), 'temporal-conn-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
const KEY_SECRET = 'c2VjcmV0LWtleS1tYXRlcmlhbA';
const KEY = `-----BEGIN PRIVATE KEY-----\n${KEY_SECRET}\n-----END PRIVATE KEY-----\n`;
const certPath = join(dir, 'client.pem');
const keyPath = join(dir, 'client.key');
const caPath = join(dir, 'ca.pem');
const notPem = join(dir, 'not.pem');
writeFileSync(certPath, CERT);
writeFileSync(keyPath, KEY);
writeFileSync(caPath, CERT);
writeFileSync(notPem, 'hello');

function configError(key: string, re?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.key, key);
    assert.match(err.message, new RegExp(key));
    if (re) assert.match(err.message, re);
    assert.equal(err.retryable, false);
    return true;
  };
}

describe('temporalConnectionOptionsFromEnv', () => {
  test('defaults: local dev server, plaintext', () => {
    const o = temporalConnectionOptionsFromEnv({});
    assert.equal(o.address, DEFAULT_TEMPORAL_ADDRESS);
    assert.equal(o.namespace, 'default');
    assert.equal(o.tls, undefined);
    assert.equal(o.apiKey, undefined);
  });

  test('address and namespace; blank values count as unset', () => {
    const o = temporalConnectionOptionsFromEnv({
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_NAMESPACE: ' ',
    });
    assert.equal(o.address, 'temporal.internal:7233');
    assert.equal(o.namespace, 'default');
    assert.equal(temporalConnectionOptionsFromEnv({ TEMPORAL_ADDRESS: '[::1]:7233' }).address, '[::1]:7233');
  });

  test('bad address -> ConfigError naming TEMPORAL_ADDRESS', () => {
    for (const bad of ['http://host:7233', 'host', 'host:0', 'host:99999']) {
      assert.throws(
        () => temporalConnectionOptionsFromEnv({ TEMPORAL_ADDRESS: bad }),
        configError('TEMPORAL_ADDRESS'),
      );
    }
  });

  test('mTLS: cert + key (+ CA, server name) are read from files', () => {
    const o = temporalConnectionOptionsFromEnv({
      TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'ns.acct',
      TEMPORAL_TLS_CERT: certPath,
      TEMPORAL_TLS_KEY: keyPath,
      TEMPORAL_TLS_CA: caPath,
      TEMPORAL_TLS_SERVER_NAME: 'frontend.example',
    });
    assert.ok(o.tls);
    assert.equal(Buffer.from(o.tls.clientCertPair?.crt ?? []).toString(), CERT);
    assert.equal(Buffer.from(o.tls.clientCertPair?.key ?? []).toString(), KEY);
    assert.equal(Buffer.from(o.tls.serverRootCACertificate ?? []).toString(), CERT);
    assert.equal(o.tls.serverNameOverride, 'frontend.example');
    assert.equal(o.namespace, 'ns.acct');
  });

  test('bad cert path -> ConfigError naming the variable and the path', () => {
    const missing = join(dir, 'nope.pem');
    assert.throws(
      () => temporalConnectionOptionsFromEnv({ TEMPORAL_TLS_CERT: missing, TEMPORAL_TLS_KEY: keyPath }),
      configError('TEMPORAL_TLS_CERT', /nope\.pem.*ENOENT/),
    );
    assert.throws(
      () => temporalConnectionOptionsFromEnv({ TEMPORAL_TLS_CERT: certPath, TEMPORAL_TLS_KEY: missing }),
      configError('TEMPORAL_TLS_KEY'),
    );
    assert.throws(
      () => temporalConnectionOptionsFromEnv({ TEMPORAL_TLS_CA: missing }),
      configError('TEMPORAL_TLS_CA'),
    );
    assert.throws(
      () => temporalConnectionOptionsFromEnv({ TEMPORAL_TLS_CA: dir }),
      configError('TEMPORAL_TLS_CA'),
    );
  });

  test('a file that is not PEM -> ConfigError', () => {
    assert.throws(
      () => temporalConnectionOptionsFromEnv({ TEMPORAL_TLS_CERT: notPem, TEMPORAL_TLS_KEY: keyPath }),
      configError('TEMPORAL_TLS_CERT', /not a PEM/),
    );
  });

  test('cert without key (and key without cert) -> ConfigError naming the missing one', () => {
    assert.throws(
      () => temporalConnectionOptionsFromEnv({ TEMPORAL_TLS_CERT: certPath }),
      configError('TEMPORAL_TLS_KEY'),
    );
    assert.throws(
      () => temporalConnectionOptionsFromEnv({ TEMPORAL_TLS_KEY: keyPath }),
      configError('TEMPORAL_TLS_CERT'),
    );
  });

  test('API key turns TLS on (system roots); TEMPORAL_TLS can force it either way', () => {
    const cloud = temporalConnectionOptionsFromEnv({
      TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233',
      TEMPORAL_API_KEY: 'sekrit-api-key',
    });
    assert.deepEqual(cloud.tls, {});
    assert.equal(cloud.apiKey, 'sekrit-api-key');
    assert.deepEqual(temporalConnectionOptionsFromEnv({ TEMPORAL_TLS: 'true' }).tls, {});
    assert.equal(
      temporalConnectionOptionsFromEnv({ TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' }).tls,
      undefined,
    );
    assert.throws(
      () => temporalConnectionOptionsFromEnv({ TEMPORAL_TLS: 'maybe' }),
      configError('TEMPORAL_TLS'),
    );
  });

  test('describeTemporalConnection never shows secrets', () => {
    const o = temporalConnectionOptionsFromEnv({
      TEMPORAL_TLS_CERT: certPath,
      TEMPORAL_TLS_KEY: keyPath,
      TEMPORAL_API_KEY: 'sekrit-api-key',
    });
    const line = describeTemporalConnection(o);
    assert.match(line, /mTLS/);
    assert.match(line, /apiKey=<set>/);
    assert.doesNotMatch(line, /sekrit/);
    assert.doesNotMatch(line, new RegExp(KEY_SECRET));
    // Errors do not echo file contents either.
    try {
      temporalConnectionOptionsFromEnv({
        TEMPORAL_TLS_CERT: keyPath.replace('.key', '.missing'),
        TEMPORAL_TLS_KEY: keyPath,
      });
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.doesNotMatch(String(err), new RegExp(KEY_SECRET));
    }
  });
});
