/**
 * The trainer process contract, exercised with small stand-in programs (Node scripts) so each exit path
 * is checked without PyTorch: events, exit codes 0/2/3/other, SIGTERM to the whole group, SIGKILL after
 * the grace period, and no process left behind.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runTrainer, type TrainerEvent } from '../../../lib/trainer/process';

async function script(body: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-trainer-'));
  const file = join(dir, 'trainer.js');
  await writeFile(file, body);
  return file;
}

/** Running, not merely a zombie waiting to be reaped (containers without an init leave those). */
function alive(pid: number): boolean {
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

describe('runTrainer', () => {
  it('delivers JSON events in order and reports done on exit 0', async () => {
    const file = await script(`
      const emit = (o) => console.log(JSON.stringify(o));
      emit({ event: 'start', resumed_from_step: null });
      console.log('a plain log line');
      for (let s = 1; s <= 3; s++) emit({ event: 'step', step: s, loss: 1 / s });
      emit({ event: 'checkpoint', step: 3, path: 'checkpoints/step-000003' });
      emit({ event: 'done', step: 3 });
    `);
    const events: TrainerEvent[] = [];
    const outcome = await runTrainer({
      python: process.execPath,
      args: [file],
      onEvent: async (e) => {
        await new Promise((r) => setTimeout(r, 5)); // slow handler: order must still hold
        events.push(e);
      },
    });
    assert.equal(outcome.kind, 'done');
    assert.deepEqual(
      events.map((e) => e.event),
      ['start', 'step', 'step', 'step', 'checkpoint', 'done'],
    );
  });

  it('maps exit 2 and bad-input error events to bad-input with the message', async () => {
    const file = await script(`
      console.log(JSON.stringify({ event: 'error', category: 'bad-input', message: 'config: unknown key foo' }));
      process.stderr.write('Traceback: details\\n');
      process.exit(2);
    `);
    const outcome = await runTrainer({ python: process.execPath, args: [file] });
    assert.equal(outcome.kind, 'bad-input');
    assert.ok(outcome.kind === 'bad-input' && outcome.message === 'config: unknown key foo');
    assert.ok(outcome.kind === 'bad-input' && outcome.stderrTail.includes('Traceback'));
  });

  it('maps other exits to failed (retryable) and exit 3 to interrupted', async () => {
    const crash = await script(`process.stderr.write('CUDA error: out of memory\\n'); process.exit(1);`);
    const failed = await runTrainer({ python: process.execPath, args: [crash] });
    assert.equal(failed.kind, 'failed');
    assert.ok(failed.kind === 'failed' && failed.stderrTail.includes('out of memory'));
    const three = await script(`process.exit(3);`);
    assert.equal((await runTrainer({ python: process.execPath, args: [three] })).kind, 'interrupted');
  });

  it('on abort sends SIGTERM to the whole process group, including grandchildren', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fake-trainer-group-'));
    const pidFile = join(dir, 'grandchild.pid');
    const file = await script(`
      const { spawn } = require('node:child_process');
      const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(g.pid));
      process.on('SIGTERM', () => {
        console.log(JSON.stringify({ event: 'checkpoint', step: 7, path: 'checkpoints/step-000007' }));
        process.exit(3);
      });
      console.log(JSON.stringify({ event: 'start' }));
      setInterval(() => {}, 1000);
    `);
    const controller = new AbortController();
    const events: TrainerEvent[] = [];
    const outcome = await runTrainer({
      python: process.execPath,
      args: [file],
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.event === 'start') setTimeout(() => controller.abort(), 200);
      },
    });
    assert.equal(outcome.kind, 'interrupted');
    assert.deepEqual(events.at(-1), { event: 'checkpoint', step: 7, path: 'checkpoints/step-000007' });
    const grandchild = Number(await readFile(pidFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(alive(grandchild), false, 'grandchild left running');
  });

  it('escalates to SIGKILL when the trainer ignores SIGTERM past the grace period', async () => {
    const file = await script(`
      process.on('SIGTERM', () => {});
      console.log(JSON.stringify({ event: 'start' }));
      setInterval(() => {}, 1000);
    `);
    const controller = new AbortController();
    const started = Date.now();
    const outcome = await runTrainer({
      python: process.execPath,
      args: [file],
      signal: controller.signal,
      killGraceMs: 300,
      onEvent: () => controller.abort(),
    });
    assert.equal(outcome.kind, 'failed');
    assert.ok(outcome.kind === 'failed' && /SIGKILL/.test(outcome.message));
    assert.ok(Date.now() - started < 10_000);
  });
});
