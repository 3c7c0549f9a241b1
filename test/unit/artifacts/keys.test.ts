import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compareKeys,
  folderPrefix,
  isValidKey,
  joinKey,
  joinPrefix,
  relativeKey,
  validateKey,
  validatePrefix,
} from '../../../lib/artifacts';
import { InvalidKeyError } from '../../../lib/errors';

describe('artifact keys', () => {
  it('accepts ordinary relative keys', () => {
    for (const key of [
      'a',
      'a/b.txt',
      'runs/r-1/prepare-corpus/shards/00001/docs.jsonl',
      'ünïcødé/𝄞',
      'a..b/.hidden',
      'x y',
    ]) {
      assert.equal(validateKey(key), key);
    }
  });

  it('rejects keys that could escape a prefix or confuse a store', () => {
    const bad: Array<[string, RegExp]> = [
      ['../x', /'\.\.' segments/],
      ['a/../b', /'\.\.' segments/],
      ['a/..', /'\.\.' segments/],
      ['./a', /'\.' segments/],
      ['/abs', /absolute/],
      ['a//b', /empty path segment/],
      ['a/', /empty path segment/],
      ['', /empty key/],
      ['a\\b', /backslash/],
      ['a\u0001b', /control/],
      ['a\nb', /control/],
      ['a\u007fb', /control/],
      ['a\u0085b', /control/],
      ['a\ud800b', /surrogate/],
      ['x'.repeat(1025), /1024/],
    ];
    for (const [key, why] of bad) {
      assert.throws(
        () => validateKey(key),
        (err: unknown) =>
          err instanceof InvalidKeyError && err.type === 'InvalidKey' && why.test(err.message),
        JSON.stringify(key),
      );
      assert.equal(isValidKey(key), false);
    }
    assert.equal(new InvalidKeyError('k', 'r').retryable, false);
  });

  it('validates prefixes: empty, raw or folder', () => {
    assert.equal(validatePrefix(''), '');
    assert.equal(validatePrefix('runs/a'), 'runs/a');
    assert.equal(validatePrefix('runs/a/'), 'runs/a/');
    for (const bad of ['/', '/a/', 'a//', '../', 'a/../'])
      assert.throws(() => validatePrefix(bad), InvalidKeyError, bad);
    assert.equal(folderPrefix(''), '');
    assert.equal(folderPrefix('a/b'), 'a/b/');
    assert.equal(folderPrefix('a/b/'), 'a/b/');
  });

  it('joins parts, dropping empty parts and one trailing slash, refusing escapes', () => {
    assert.equal(joinKey('runs/r1/', 'pretrain', 'model.onnx'), 'runs/r1/pretrain/model.onnx');
    assert.equal(joinKey('', 'a', '', 'b'), 'a/b');
    assert.equal(joinPrefix('runs', 'r1', 'stage'), 'runs/r1/stage/');
    assert.equal(joinPrefix(), '');
    assert.throws(() => joinKey('runs', '../x'), InvalidKeyError);
    assert.throws(() => joinKey('runs', '/abs'), InvalidKeyError);
    assert.throws(() => joinKey('a//', 'b'), InvalidKeyError);
    assert.equal(relativeKey('runs/r1/', 'runs/r1/x/y'), 'x/y');
    assert.equal(relativeKey('runs/r1', 'runs/r1/x'), 'x');
    assert.throws(() => relativeKey('runs/r1/', 'runs/r10/x'), InvalidKeyError);
  });

  it('orders keys like S3 (UTF-8 bytes)', () => {
    const keys = ['b', 'a/b', 'a-c', '\u{1F600}', '\uFFFD', 'a'];
    assert.deepEqual([...keys].sort(compareKeys), ['a', 'a-c', 'a/b', 'b', '\uFFFD', '\u{1F600}']);
  });
});
