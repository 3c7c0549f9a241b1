/**
 * The code that produced an artifact, recorded in its manifest: git commit, package version and (when the
 * Python trainer is present) the trainer's version.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

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
