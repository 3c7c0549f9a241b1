/** Polling helpers of the integration tests: wait for a condition, find processes by their command line. */
import { spawnSync } from 'node:child_process';

/** Live (non-zombie) processes whose command line contains `text`. */
export function processesMentioning(text: string): number[] {
  const out = spawnSync('ps', ['-eo', 'pid,stat,args'], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .filter((line) => line.includes(text) && !line.includes('ps -eo') && !/^\s*\d+\s+Z/.test(line))
    .map((line) => Number.parseInt(line.trim(), 10));
}

/** Polls `probe` every 200 ms until it returns a value; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}
