import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { extractForce } from '../../../cli/commands/run';

const CLI = join(__dirname, '..', '..', '..', 'cli', 'main.js');

function cotmae(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TEMPORAL_ADDRESS: '' },
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('cotmae CLI', () => {
  it('prints the command list for --help and exits 0', () => {
    const r = cotmae('--help');
    assert.equal(r.code, 0);
    for (const c of ['run', 'status', 'worker', 'data import', 'demo']) assert.match(r.out, new RegExp(c));
  });

  it('has --help on every command', () => {
    for (const c of ['run', 'status', 'cancel', 'worker', 'data', 'demo']) {
      const r = cotmae(c, '--help');
      assert.equal(r.code, 0, `${c} --help: ${r.err}`);
      assert.match(r.out, new RegExp(`^cotmae ${c}`));
    }
  });

  it('exits 2 on an unknown command or flag', () => {
    assert.equal(cotmae('frobnicate').code, 2);
    const r = cotmae('run', '--no-such-flag');
    assert.equal(r.code, 2);
    assert.match(r.err, /no-such-flag/);
  });

  it('exits 2 listing every problem of an invalid run input', () => {
    const r = cotmae('run', '--format', 'csv');
    assert.equal(r.code, 2);
    assert.match(r.err, /corpus\.source/);
    assert.match(r.err, /corpus\.format/);
  });

  it('exits 2 when a worker kind is missing', () => {
    assert.equal(cotmae('worker').code, 2);
    assert.equal(cotmae('worker', 'tpu').code, 2);
    assert.equal(cotmae('status').code, 2);
    assert.equal(cotmae('data', 'export', 'x').code, 2);
  });

  it('exits 2 with the file named when data import gets a missing directory', () => {
    const r = cotmae('data', 'import', '/no/such/dir');
    assert.equal(r.code, 2);
    assert.match(r.err, /\/no\/such\/dir/);
  });
});

describe('--set', () => {
  it('sets nested keys, parsing JSON values and keeping bare words as strings', () => {
    const { applySet } = require('../../../cli/commands/run') as typeof import('../../../cli/commands/run');
    const input: Record<string, unknown> = { prepare_corpus: { seed: 1 } };
    applySet(input, 'prepare_corpus.empty_text=skip');
    applySet(input, 'prepare_corpus.max_passage_tokens=64');
    applySet(input, 'corpus.format=beir');
    assert.deepEqual(input, {
      prepare_corpus: { seed: 1, empty_text: 'skip', max_passage_tokens: 64 },
      corpus: { format: 'beir' },
    });
    assert.throws(() => applySet(input, '=x'), /KEY=VALUE/);
    assert.throws(() => applySet(input, 'a..b=1'), /KEY=VALUE/);
  });

  it('reports a bad --set value through validation with exit 2', () => {
    const r = cotmae('run', '--corpus', '/tmp', '--set', 'prepare_corpus.max_passage_tokens=lots');
    assert.equal(r.code, 2);
    assert.match(r.err, /prepare_corpus\.max_passage_tokens/);
  });
});

describe('--force [STAGE...]', () => {
  it('takes optional stage names after --force, or a comma list after =', () => {
    assert.deepEqual(extractForce(['--corpus', 'x', '--force']), { argv: ['--corpus', 'x'], force: true });
    assert.deepEqual(extractForce(['--force', 'pretrain', '--corpus', 'x']), {
      argv: ['--corpus', 'x'],
      force: ['pretrain'],
    });
    assert.deepEqual(extractForce(['--force', 'tokenizer', 'pretrain']), {
      argv: [],
      force: ['tokenizer', 'pretrain'],
    });
    assert.deepEqual(extractForce(['--force=prepare-corpus,pretrain']), {
      argv: [],
      force: ['prepare-corpus', 'pretrain'],
    });
    // A word that is not a stage stays an argument of its own.
    assert.deepEqual(extractForce(['--force', 'data-dir']), { argv: ['data-dir'], force: true });
    assert.deepEqual(extractForce(['--corpus', 'x']), { argv: ['--corpus', 'x'], force: undefined });
  });

  it('rejects an unknown stage in --from-stage with exit 2, naming it', () => {
    const r = cotmae('run', '--corpus', '/nonexistent', '--from-stage', 'bogus');
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /from_stage: unknown stage "bogus"/);
  });
});
