/** Shared by the trainer unit tests: process checks and the fake trainer's invocation. */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeTrainerOptions, fakeTrainerPath } from '../../support/fake-trainer';

/** Running, not merely a zombie waiting to be reaped (containers without an init leave those). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** True while any process is in process group `pgid`. */
export function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitUntil(what: string, timeoutMs: number, probe: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export interface FakeRun {
  dir: string;
  out: string;
  data: string;
  configFile: string;
  /** python + args for runTrainer. */
  python: string;
  args(opts?: { resume?: boolean }): string[];
}

/** A scratch dir with a config (`fake` options + plain keys), a data dir holding corpus.json, and OUT. */
export async function fakeRun(
  fake: FakeTrainerOptions,
  config: Record<string, unknown> = {},
  corpus = '{"shards":["a"]}',
): Promise<FakeRun> {
  const dir = await mkdtemp(join(tmpdir(), 'cotmae-fake-run-'));
  const data = join(dir, 'data');
  const tokenizer = join(dir, 'tokenizer');
  await mkdir(data);
  await mkdir(tokenizer);
  await writeFile(join(data, 'corpus.json'), corpus);
  const configFile = join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify({ ...config, fake }));
  const out = join(dir, 'out');
  return {
    dir,
    out,
    data,
    configFile,
    python: process.execPath,
    args: (o = {}) => [
      fakeTrainerPath(),
      'pretrain',
      '--config',
      configFile,
      '--data',
      data,
      '--tokenizer',
      tokenizer,
      '--output',
      out,
      ...(o.resume ? ['--resume'] : []),
    ],
  };
}
