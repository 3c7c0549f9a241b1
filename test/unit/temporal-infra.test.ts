import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { findTemporalCli, freePort } from '../../infra/temporal';
import { ConfigError } from '../../lib/errors';

const dir = mkdtempSync(join(tmpdir(), 'temporal-infra-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('findTemporalCli: TEMPORAL_CLI wins and must be executable', () => {
  const exe = join(dir, 'temporal');
  writeFileSync(exe, '#!/bin/sh\n');
  chmodSync(exe, 0o755);
  assert.equal(findTemporalCli({ TEMPORAL_CLI: exe, PATH: '' }), exe);

  const notExe = join(dir, 'plain');
  writeFileSync(notExe, '');
  assert.throws(
    () => findTemporalCli({ TEMPORAL_CLI: notExe }),
    (err: unknown) => err instanceof ConfigError && err.key === 'TEMPORAL_CLI',
  );
});

test('findTemporalCli: missing everywhere -> actionable ConfigError (or the repo .venv one)', () => {
  try {
    const found = findTemporalCli({ PATH: '' });
    // After `make setup` the repo's .venv/bin/temporal is found.
    assert.match(found, /\.venv\/bin\/temporal$/);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /make setup/);
  }
});

test('freePort returns a usable port', async () => {
  const a = await freePort();
  const b = await freePort();
  assert.ok(a > 0 && a < 65536);
  assert.ok(b > 0 && b < 65536);
});
