/** Where things live on this machine by default; each can be moved with an environment variable. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Repository root: the nearest folder above this file with a package.json (works from dist/ and from src). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Local state of the embedded defaults: artifacts, the dev server's SQLite file, scratch space. */
export function stateDir(env: Env = process.env): string {
  return resolve(env.COTMAE_STATE_DIR ?? join(repoRoot(), '.state'));
}

/** The artifact root used when neither the command nor the workflow input names one. */
export function defaultArtifactRoot(env: Env = process.env): string {
  return env.COTMAE_ARTIFACTS?.trim() || join(stateDir(env), 'artifacts');
}

/** Scratch and download cache of a worker. */
export function workDir(env: Env = process.env): string {
  return resolve(env.COTMAE_WORK_DIR ?? join(stateDir(env), 'work'));
}
