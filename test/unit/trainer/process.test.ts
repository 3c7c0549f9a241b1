/**
 * The trainer process contract, exercised with small stand-in programs (Node scripts) so each exit path
 * is checked without PyTorch: events, exit codes 0/2/3/other, SIGTERM to the whole group, SIGKILL after
 * the grace period, and no process left behind.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runTrainer, type TrainerEvent } from '../../../lib/trainer/process';
import { alive, groupExists, sleep } from './helpers';

async function script(body: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-trainer-'));
  const file = join(dir, 'trainer.js');
  await writeFile(file, body);
  return file;
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
    // A driver-level "CUDA error: out of memory" (e.g. another process holds the GPU) is not PyTorch's
    // allocator OOM: a retry, maybe elsewhere, can succeed.
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

  it('classifies PyTorch OOM on stderr as oom whatever the exit code, and names the knobs', async () => {
    for (const [line, code] of [
      ['torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB', 1],
      ['torch.cuda.OutOfMemoryError: boom', 3],
      ['RuntimeError: CUDA out of memory. Tried to allocate 1 GiB', 2],
    ] as const) {
      // The OOM line is followed by more output than the tail keeps (torchrun's summary): still found.
      const file = await script(`
        process.stderr.write(${JSON.stringify(`Traceback (most recent call last):\n${line}\n`)});
        process.stderr.write('x'.repeat(10000) + '\\n');
        process.exit(${code});
      `);
      const outcome = await runTrainer({ python: process.execPath, args: [file], stderrTailChars: 200 });
      assert.equal(outcome.kind, 'oom', line);
      const message = outcome.kind === 'oom' ? outcome.message : '';
      assert.ok(message.startsWith(line), message);
      assert.match(message, /lower batch_size, or raise grad_accum/);
    }
  });

  it('an oom error event wins over exit 2 (bad-input), and its own advice is kept as is', async () => {
    const file = await script(`
      console.log(JSON.stringify({ event: 'step', step: 1, loss: 1 }));
      console.log(JSON.stringify({ event: 'error', category: 'oom', message: 'out of memory: lower batch_size (now 512)' }));
      process.exit(2);
    `);
    const outcome = await runTrainer({ python: process.execPath, args: [file] });
    assert.deepEqual(outcome, {
      kind: 'oom',
      message: 'out of memory: lower batch_size (now 512)',
      stderrTail: '',
    });
  });

  it('exit 0 is done even if an OOM was logged (and recovered from) on the way', async () => {
    const file = await script(`
      process.stderr.write('warning: CUDA out of memory, retrying with a smaller micro-batch\\n');
      console.log(JSON.stringify({ event: 'done', step: 1 }));
    `);
    assert.equal((await runTrainer({ python: process.execPath, args: [file] })).kind, 'done');
  });

  it('a synchronously throwing handler or onLine: failed, trainer stopped, no more calls', async () => {
    const file = await script(`
      let s = 0;
      console.log(JSON.stringify({ event: 'start', pid: process.pid }));
      setInterval(() => console.log(JSON.stringify({ event: 'step', step: ++s, loss: 1 })), 20);
    `);
    const unhandled: unknown[] = [];
    const listener = (r: unknown) => unhandled.push(r);
    process.on('unhandledRejection', listener);
    try {
      let calls = 0;
      let pid = 0;
      const outcome = await runTrainer({
        python: process.execPath,
        args: [file],
        killGraceMs: 200,
        onEvent: (e) => {
          calls += 1;
          if (e.event === 'start') pid = e.pid as number;
          if (e.event === 'step' && e.step === 2) throw new TypeError('bad handler');
        },
      });
      assert.equal(outcome.kind, 'failed');
      assert.equal(outcome.kind === 'failed' && outcome.message, 'step handler failed: bad handler');
      assert.ok(outcome.kind === 'failed' && outcome.cause instanceof TypeError);
      assert.equal(calls, 3);
      assert.equal(groupExists(pid), false);

      let lines = 0;
      const viaLine = await runTrainer({
        python: process.execPath,
        args: [file],
        killGraceMs: 200,
        onLine: () => {
          lines += 1;
          if (lines === 3) throw new Error('heartbeat broke');
        },
      });
      assert.equal(viaLine.kind === 'failed' && viaLine.message, 'onLine handler failed: heartbeat broke');
      assert.equal(lines, 3);
      await sleep(50);
      assert.deepEqual(unhandled, []);
    } finally {
      process.removeListener('unhandledRejection', listener);
    }
  });

  it('a handler failing after the trainer exited 0 still makes the run failed', async () => {
    const file = await script(
      `console.log(JSON.stringify({ event: 'checkpoint', step: 1, path: 'checkpoints/step-000001' }));`,
    );
    const outcome = await runTrainer({
      python: process.execPath,
      args: [file],
      onEvent: async () => {
        await sleep(100);
        throw new Error('slow upload failed');
      },
    });
    assert.equal(
      outcome.kind === 'failed' && outcome.message,
      'checkpoint upload failed: slow upload failed',
    );
  });

  it('kills leftover group members when the trainer exits, so the run ends even if they hold stdout', async () => {
    const file = await script(`
      const { spawn } = require('node:child_process');
      spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: ['ignore', 'inherit', 'inherit'] });
      console.log(JSON.stringify({ event: 'done', step: 1 }));
      setTimeout(() => process.exit(0), 100);
    `);
    const started = Date.now();
    const outcome = await runTrainer({ python: process.execPath, args: [file] });
    assert.equal(outcome.kind, 'done');
    assert.ok(Date.now() - started < 5000);
  });

  it('a trainer program that cannot start rejects with the spawn error (and leaves no timer behind)', async () => {
    await assert.rejects(
      runTrainer({ python: '/nonexistent/python', args: [], stallTimeoutMs: 60_000 }),
      /ENOENT/,
    );
  });
});
