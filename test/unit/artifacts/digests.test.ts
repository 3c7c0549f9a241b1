import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { contentDigest, findRepoRoot, sourceDigest } from '../../../lib/artifacts';
import { ConfigError, InvalidKeyError } from '../../../lib/errors';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('contentDigest', () => {
  const files = [
    { path: 'b.txt', sha256: sha('b') },
    { path: 'a/x.bin', sha256: sha('x') },
    { path: 'a-b', sha256: sha('ab') },
    { path: 'é.txt', sha256: sha('e') },
  ];

  it('is sha256 of sha256sum-style lines sorted by path in UTF-8 byte order', () => {
    const expected = sha(
      [
        `${sha('ab')}  a-b\n`, // '-' (0x2d) sorts before '/' (0x2f)
        `${sha('x')}  a/x.bin\n`,
        `${sha('b')}  b.txt\n`,
        `${sha('e')}  é.txt\n`,
      ].join(''),
    );
    assert.equal(contentDigest(files), expected);
  });

  it('ignores order and everything but paths and digests', () => {
    const shuffled = [...files].reverse().map((f, i) => ({ ...f, bytes: i, object: `_staged/z/${f.path}` }));
    assert.equal(contentDigest(shuffled), contentDigest(files));
    assert.notEqual(contentDigest([...files, { path: 'c', sha256: sha('c') }]), contentDigest(files));
    assert.notEqual(
      contentDigest(files.map((f) => (f.path === 'b.txt' ? { ...f, path: 'B.txt' } : f))),
      contentDigest(files),
    );
    assert.equal(contentDigest([]), sha(''));
  });

  it('refuses duplicate paths, bad paths and bad digests', () => {
    assert.throws(() => contentDigest([files[0], files[0]] as typeof files), InvalidKeyError);
    assert.throws(() => contentDigest([{ path: '../x', sha256: sha('x') }]), InvalidKeyError);
    assert.throws(() => contentDigest([{ path: 'x', sha256: 'nothex' }]), InvalidKeyError);
  });
});

describe('sourceDigest', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'cotmae-source-digest-'));
    await mkdir(path.join(root, 'dist', 'lib', 'deep'), { recursive: true });
    await mkdir(path.join(root, 'dist', 'node_modules', 'dep'), { recursive: true });
    await mkdir(path.join(root, 'trainer', 'cotmae_trainer', '__pycache__'), { recursive: true });
    await writeFile(path.join(root, 'dist', 'a.js'), 'exports.a = 1;\n');
    await writeFile(path.join(root, 'dist', 'a.js.map'), '{}');
    await writeFile(path.join(root, 'dist', 'lib', 'deep', 'b.js'), 'exports.b = 2;\n');
    await writeFile(path.join(root, 'dist', 'node_modules', 'dep', 'index.js'), 'ignored');
    await writeFile(path.join(root, 'trainer', 'cotmae_trainer', 'train.py'), 'print(1)\n');
    await writeFile(path.join(root, 'trainer', 'cotmae_trainer', '__pycache__', 'train.pyc'), 'x');
    await writeFile(path.join(root, 'trainer', 'pyproject.toml'), '[project]\nversion = "1"\n');
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const js = (extra: Partial<Parameters<typeof sourceDigest>[1]> = {}) =>
    sourceDigest(['dist'], { root, extensions: ['.js'], cache: false, ...extra });

  it('hashes sorted relative paths and contents of matching files', () => {
    const expected = sha(
      `${sha('exports.a = 1;\n')}  dist/a.js\n${sha('exports.b = 2;\n')}  dist/lib/deep/b.js\n`,
    );
    assert.equal(js(), expected, 'node_modules, .map files are left out');
  });

  it('is deterministic: same arguments in any order, cached once per process per argument set', () => {
    const a = sourceDigest(['trainer/cotmae_trainer', 'dist'], { root, extensions: ['.py', '.js'] });
    const b = sourceDigest(['dist', 'trainer/cotmae_trainer', 'dist'], { root, extensions: ['.js', '.py'] });
    assert.equal(a, b);
    assert.equal(
      a,
      sourceDigest(['dist', 'trainer/cotmae_trainer'], { root, extensions: ['.js', '.py'], cache: false }),
    );
    assert.notEqual(a, js());
    assert.notEqual(
      sourceDigest(['trainer/cotmae_trainer'], { root, extensions: ['.py'], cache: false }),
      sourceDigest(['trainer'], { root, cache: false }),
      'a file named explicitly or another extension set is another argument set',
    );
  });

  it('changes when a file changes, is added, or is renamed; not for files filtered out', async () => {
    const before = js();
    const cached = sourceDigest(['dist'], { root, extensions: ['.js'] });
    await writeFile(path.join(root, 'dist', 'a.js'), 'exports.a = 2;\n');
    const changed = js();
    assert.notEqual(changed, before);
    assert.equal(sourceDigest(['dist'], { root, extensions: ['.js'] }), cached, 'computed once per process');
    await writeFile(path.join(root, 'dist', 'a.js.map'), '{"changed":true}');
    assert.equal(js(), changed, '.map is filtered out');
    await writeFile(path.join(root, 'dist', 'lib', 'c.js'), '');
    const added = js();
    assert.notEqual(added, changed);
    await rename(path.join(root, 'dist', 'lib', 'c.js'), path.join(root, 'dist', 'lib', 'd.js'));
    assert.notEqual(js(), added);
    await symlink(path.join(root, 'dist', 'a.js'), path.join(root, 'dist', 'link.js'));
    assert.notEqual(js(), added, 'symlinked files count (by content)');
  });

  it('refuses missing paths, paths outside the root, and an empty selection', () => {
    assert.throws(() => sourceDigest(['nope'], { root }), ConfigError);
    assert.throws(() => sourceDigest(['../etc'], { root }), ConfigError);
    assert.throws(() => sourceDigest([], { root }), ConfigError);
    assert.throws(() => sourceDigest(['dist'], { root, extensions: ['.rs'] }), ConfigError);
  });

  it('defaults to the repo root (the dist of this very build)', () => {
    const repo = findRepoRoot();
    assert.ok(repo);
    const d = sourceDigest(['lib/artifacts'], { extensions: ['.ts'] });
    assert.match(d, /^[0-9a-f]{64}$/);
    assert.equal(d, sourceDigest(['lib/artifacts'], { extensions: ['.ts'], root: repo }));
  });
});
