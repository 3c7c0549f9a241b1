/**
 * The code that produced an artifact, recorded in its manifest: git commit, package version and (when the
 * Python trainer is present) the trainer's version.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors';

export interface CodeVersion {
  /** `COTMAE_GIT_COMMIT`, else `git rev-parse HEAD` in the repo, else 'unknown'. */
  gitCommit: string;
  /** package.json `version`. */
  packageVersion: string;
  /** trainer/pyproject.toml `[project] version`, when that file exists. */
  trainerVersion?: string;
}

const PACKAGE_NAME = 'cotmae-pipeline';

/** The repo root: the nearest folder above `from` whose package.json is this project's. */
export function findRepoRoot(from: string = __dirname): string | undefined {
  let dir = path.resolve(from);
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return dir;
      } catch {
        // not ours (or unreadable): keep looking
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The `version` in the `[project]` (or `[tool.poetry]`) table of a pyproject.toml; undefined if absent. */
export function parsePyprojectVersion(toml: string): string | undefined {
  let table = '';
  for (const raw of toml.split(/\r?\n/)) {
    const line = raw.replace(/\s+#.*$/, '').trim();
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      table = (header[1] ?? '').trim();
      continue;
    }
    if (table !== 'project' && table !== 'tool.poetry') continue;
    const m = /^version\s*=\s*(?:"([^"]*)"|'([^']*)')$/.exec(line);
    if (m) return m[1] ?? m[2];
  }
  return undefined;
}

function gitHead(repoRoot: string): string | undefined {
  try {
    const out = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    }).trim();
    return /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(out) ? out : undefined;
  } catch {
    return undefined; // no git binary, not a checkout (e.g. a container image), or no commit yet
  }
}

export interface CodeVersionOptions {
  repoRoot?: string;
  env?: NodeJS.ProcessEnv;
}

let cached: CodeVersion | undefined;

/**
 * The running code's version. Computed once per process (git is spawned once) when called without options.
 */
export function getCodeVersion(opts?: CodeVersionOptions): CodeVersion {
  if (!opts && cached) return cached;
  const env = opts?.env ?? process.env;
  const root = opts?.repoRoot ?? findRepoRoot();
  let packageVersion = 'unknown';
  let trainerVersion: string | undefined;
  let gitCommit = env.COTMAE_GIT_COMMIT?.trim() || undefined;
  if (root) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: string };
      packageVersion = pkg.version ?? 'unknown';
    } catch {
      // keep 'unknown'
    }
    const pyproject = path.join(root, 'trainer', 'pyproject.toml');
    if (existsSync(pyproject)) trainerVersion = parsePyprojectVersion(readFileSync(pyproject, 'utf8'));
    gitCommit ??= gitHead(root);
  }
  const version: CodeVersion = { gitCommit: gitCommit ?? 'unknown', packageVersion };
  if (trainerVersion !== undefined) version.trainerVersion = trainerVersion;
  if (!opts) cached = version;
  return version;
}

export interface SourceDigestOptions {
  /** Only files whose names end in one of these (e.g. ['.js'] for dist, ['.py'] for the trainer). Default: all. */
  extensions?: readonly string[];
  /** What the paths are relative to (default: the repo root, findRepoRoot()). */
  root?: string;
  /** Reuse (and remember) this process's earlier result for the same arguments (default true). */
  cache?: boolean;
}

/** Folders never descended into: VCS data, dependencies, caches. */
const SKIPPED_DIRS = new Set([
  '.git',
  'node_modules',
  '__pycache__',
  '.venv',
  '.cache',
  '.mypy_cache',
  '.pytest_cache',
]);

const sourceDigests = new Map<string, string>();

/**
 * The code version of a stage: sha256 over the sorted relative paths and contents of every file under the
 * given repo-relative folders or files (extension-filtered; a file named explicitly is always included). Put it
 * in a stage's cache key so that changing that stage's code (and only that) invalidates its cached outputs.
 * Each line hashed is `<sha256 of the file>  <path relative to root>`; paths sort in UTF-8 byte order; dot
 * files are included, but `.git`, `node_modules`, `__pycache__`, `.venv` and `.cache` folders are not.
 * Computed once per process per argument set (files read synchronously on first use). ConfigError when a path
 * is missing, escapes the root, or no file matches.
 */
export function sourceDigest(relPaths: readonly string[], opts: SourceDigestOptions = {}): string {
  const root = path.resolve(opts.root ?? findRepoRoot() ?? process.cwd());
  const rels = [...new Set(relPaths)].sort();
  const exts = [...new Set(opts.extensions ?? [])].sort();
  const memo = JSON.stringify([root, rels, exts]);
  const useCache = opts.cache ?? true;
  const known = useCache ? sourceDigests.get(memo) : undefined;
  if (known !== undefined) return known;
  if (rels.length === 0) throw new ConfigError('sourceDigest', 'no paths given');
  const wanted = (name: string) => exts.length === 0 || exts.some((e) => name.endsWith(e));
  const files = new Set<string>();
  const walk = (abs: string, rel: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const childAbs = path.join(abs, entry.name);
      const childRel = `${rel}/${entry.name}`;
      const info = entry.isSymbolicLink() ? statSync(childAbs, { throwIfNoEntry: false }) : entry;
      if (info?.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(childAbs, childRel);
      } else if (info?.isFile() && wanted(entry.name)) files.add(childRel);
    }
  };
  for (const rel of rels) {
    const abs = path.resolve(root, rel);
    const back = path.relative(root, abs);
    if (back.startsWith('..') || path.isAbsolute(back)) {
      throw new ConfigError('sourceDigest', `${JSON.stringify(rel)} is outside ${root}`);
    }
    const info = statSync(abs, { throwIfNoEntry: false });
    const relKey = back.split(path.sep).join('/');
    if (!info)
      throw new ConfigError('sourceDigest', `${JSON.stringify(rel)}: no such file or folder under ${root}`);
    if (info.isDirectory()) walk(abs, relKey === '' ? '.' : relKey);
    else files.add(relKey);
  }
  if (files.size === 0) {
    throw new ConfigError(
      'sourceDigest',
      `no ${exts.length > 0 ? exts.join('/') : ''} files under ${rels.join(', ')} in ${root}`,
    );
  }
  const sorted = [...new Set([...files].map((f) => (f.startsWith('./') ? f.slice(2) : f)))].sort((a, b) =>
    Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')),
  );
  const outer = createHash('sha256');
  for (const rel of sorted) {
    const digest = createHash('sha256')
      .update(readFileSync(path.join(root, ...rel.split('/'))))
      .digest('hex');
    outer.update(`${digest}  ${rel}\n`);
  }
  const result = outer.digest('hex');
  if (useCache) sourceDigests.set(memo, result);
  return result;
}
