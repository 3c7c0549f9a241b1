/**
 * The fake trainer (test/support/fake-trainer.ts) driven through runTrainer: it follows the CLI contract
 * (events, checkpoints with COMPLETE last, pruning, outputs, SIGTERM → checkpoint + exit 3, --resume,
 * parent death), and runTrainer's hardening holds against it (stall watchdog, failing checkpoint
 * handler without an unhandled rejection, OOM, no secrets in the child's environment).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runTrainer, type TrainerEvent } from '../../../lib/trainer/process';
import { trainerEnv } from '../../../lib/trainer/python';
import { fakeTrainerPath } from '../../support/fake-trainer';
import { alive, fakeRun, groupExists, sleep, waitUntil } from './helpers';

type Step = Extract<TrainerEvent, { event: 'step' }>;

function startPid(events: TrainerEvent[]): number {
  const start = events.find((e) => e.event === 'start');
  assert.ok(start && typeof start.pid === 'number', 'start event with pid');
  return start.pid as number;
}

function logSteps(out: string): number[] {
  const file = join(out, 'train_log.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { step: number }).step);
}

/** Copies a folder the way the artifact writer reads one: symlinks followed, so a dangling one fails. */
async function upload(src: string, dst: string): Promise<void> {
  await mkdir(dst, { recursive: true });
  for (const entry of await readdir(src, { withFileTypes: true })) {
    const from = join(src, entry.name);
    const info = entry.isSymbolicLink() ? await stat(from) : entry;
    if (info.isDirectory()) await upload(from, join(dst, entry.name));
    else await copyFile(from, join(dst, entry.name));
  }
}

/** Records every unhandled rejection while a test runs. */
function watchUnhandled() {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  return {
    seen,
    stop: () => process.removeListener('unhandledRejection', listener),
  };
}

describe('fake trainer through runTrainer', () => {
  it('runs to done: events, train_log, checkpoints (COMPLETE, pruned), model/decoders/summary', async () => {
    const run = await fakeRun({ steps: 7, checkpoint_every: 2, log_every: 1 }, { keep_checkpoints: 2 });
    const events: TrainerEvent[] = [];
    const outcome = await runTrainer({
      python: run.python,
      args: run.args(),
      onEvent: (e) => void events.push(e),
    });
    assert.equal(outcome.kind, 'done');
    assert.deepEqual(outcome.kind === 'done' && outcome.lastEvent, {
      event: 'done',
      step: 7,
      model: 'model',
      decoders: 'decoders',
    });
    const start = events[0];
    assert.ok(start?.event === 'start');
    assert.equal(start.resumed_from_step, null);
    const steps = events.filter((e): e is Step => e.event === 'step');
    assert.deepEqual(
      steps.map((e) => e.step),
      [1, 2, 3, 4, 5, 6, 7],
    );
    assert.ok(steps.every((e) => typeof e.loss === 'number' && typeof e.losses?.mlm === 'number'));
    assert.deepEqual(
      events.filter((e) => e.event === 'checkpoint').map((e) => (e as { path: string }).path),
      [2, 4, 6, 7].map((s) => `checkpoints/step-00000${s}`),
    );
    assert.deepEqual(logSteps(run.out), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(readdirSync(join(run.out, 'checkpoints')).sort(), ['step-000006', 'step-000007']);
    const state = JSON.parse(readFileSync(join(run.out, 'checkpoints', 'step-000007', 'state.json'), 'utf8'));
    assert.equal(state.step, 7);
    assert.equal(
      state.data_digest,
      createHash('sha256')
        .update(readFileSync(join(run.data, 'corpus.json')))
        .digest('hex'),
    );
    assert.equal(readFileSync(join(run.out, 'checkpoints', 'step-000007', 'COMPLETE'), 'utf8').trim(), '7');
    for (const part of ['model', 'decoders']) {
      const info = JSON.parse(readFileSync(join(run.out, part, 'fake.json'), 'utf8'));
      assert.equal(info.step, 7);
      assert.equal(info.cuda_visible_devices, null);
      assert.ok(info.started_ms <= info.finished_ms);
    }
    const summary = JSON.parse(readFileSync(join(run.out, 'pretrain_summary.json'), 'utf8'));
    assert.equal(summary.steps, 7);
    assert.equal(summary.resumed_from_step, null);
  });

  it('SIGTERM: finishes the step, checkpoints, exits 3 (interrupted); --resume continues without repeats', async () => {
    const run = await fakeRun({ steps: 40, step_ms: 20, checkpoint_every: 100, log_every: 1 });
    const controller = new AbortController();
    const events: TrainerEvent[] = [];
    const first = await runTrainer({
      python: run.python,
      args: run.args(),
      signal: controller.signal,
      killGraceMs: 5000,
      onEvent: (e) => {
        events.push(e);
        if (e.event === 'step' && e.step === 5) controller.abort();
      },
    });
    assert.equal(first.kind, 'interrupted');
    const last = events.at(-1);
    assert.ok(last?.event === 'error' && last.category === 'transient', JSON.stringify(last));
    const checkpoint = events.filter((e) => e.event === 'checkpoint').at(-1);
    assert.ok(checkpoint?.event === 'checkpoint');
    const stoppedAt = checkpoint.step;
    assert.ok(stoppedAt >= 5 && stoppedAt < 40, `stopped at ${stoppedAt}`);
    assert.ok(
      existsSync(join(run.out, 'checkpoints', `step-${String(stoppedAt).padStart(6, '0')}`, 'COMPLETE')),
    );
    assert.ok(!existsSync(join(run.out, 'model')), 'no model before the last step');

    // Without --resume an output dir with checkpoints is refused (exit 2).
    const refused = await runTrainer({ python: run.python, args: run.args() });
    assert.equal(refused.kind, 'bad-input');
    assert.match(refused.kind === 'bad-input' ? refused.message : '', /--resume/);

    const resumedEvents: TrainerEvent[] = [];
    const second = await runTrainer({
      python: run.python,
      args: run.args({ resume: true }),
      onEvent: (e) => void resumedEvents.push(e),
    });
    assert.equal(second.kind, 'done');
    const start = resumedEvents[0];
    assert.ok(start?.event === 'start');
    assert.equal(start.resumed_from_step, stoppedAt);
    const firstResumedStep = resumedEvents.find((e): e is Step => e.event === 'step');
    assert.equal(firstResumedStep?.step, stoppedAt + 1);
    assert.deepEqual(
      logSteps(run.out),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    const summary = JSON.parse(readFileSync(join(run.out, 'pretrain_summary.json'), 'utf8'));
    assert.equal(summary.resumed_from_step, stoppedAt);
  });

  it('stall: a trainer that stops printing (and ignores SIGTERM) is killed and reported as stalled', async () => {
    const run = await fakeRun({ steps: 100, hang_after_step: 3, ignore_sigterm: true, log_every: 1 });
    const events: TrainerEvent[] = [];
    const lineTimes: number[] = [];
    const started = Date.now();
    const outcome = await runTrainer({
      python: run.python,
      args: run.args(),
      stallTimeoutMs: 1000,
      killGraceMs: 200,
      onLine: (at) => void lineTimes.push(at),
      onEvent: (e) => void events.push(e),
    });
    assert.equal(outcome.kind, 'stalled', JSON.stringify(outcome));
    assert.ok(outcome.kind === 'stalled' && outcome.idleMs >= 1000);
    assert.match(outcome.kind === 'stalled' ? outcome.message : '', /stall timeout 1000 ms/);
    assert.ok(Date.now() - started < 10_000);
    assert.equal(lineTimes.length, events.length, 'onLine for every line');
    assert.deepEqual(
      events.filter((e): e is Step => e.event === 'step').map((e) => e.step),
      [1, 2, 3],
    );
    assert.equal(groupExists(startPid(events)), false, 'trainer process group left behind');
  });

  it('stall: a hung trainer that honours SIGTERM checkpoints on the way out; still stalled', async () => {
    const run = await fakeRun({ steps: 100, hang_after_step: 2, log_every: 1 });
    const events: TrainerEvent[] = [];
    const outcome = await runTrainer({
      python: run.python,
      args: run.args(),
      stallTimeoutMs: 1000,
      killGraceMs: 5000,
      onEvent: (e) => void events.push(e),
    });
    assert.equal(outcome.kind, 'stalled');
    assert.ok(events.some((e) => e.event === 'checkpoint' && e.step === 2));
  });

  it('no stall while lines keep coming, even when the whole run is longer than the timeout', async () => {
    const run = await fakeRun({ steps: 40, step_ms: 50, log_every: 1 });
    const outcome = await runTrainer({ python: run.python, args: run.args(), stallTimeoutMs: 1500 });
    assert.equal(outcome.kind, 'done');
  });

  it('a handler failing on the 2nd checkpoint: failed with its error, trainer stopped, no unhandled rejection', async () => {
    const unhandled = watchUnhandled();
    try {
      const run = await fakeRun({ steps: 200, step_ms: 10, checkpoint_every: 2, log_every: 1 });
      const boom = new Error('bucket unreachable');
      let checkpoints = 0;
      const afterFailure: TrainerEvent[] = [];
      const events: TrainerEvent[] = [];
      const outcome = await runTrainer({
        python: run.python,
        args: run.args(),
        killGraceMs: 5000,
        onEvent: async (e) => {
          events.push(e);
          if (checkpoints >= 2) afterFailure.push(e);
          if (e.event !== 'checkpoint') return;
          checkpoints += 1;
          await sleep(5);
          if (checkpoints === 2) throw boom;
        },
      });
      assert.equal(outcome.kind, 'failed');
      assert.ok(outcome.kind === 'failed');
      assert.equal(outcome.message, 'checkpoint upload failed: bucket unreachable');
      assert.equal(outcome.cause, boom);
      assert.deepEqual(afterFailure, [], 'no handler call after the failure');
      const pid = startPid(events);
      assert.equal(alive(pid), false);
      assert.equal(groupExists(pid), false, 'trainer process group left behind');
      assert.ok(!existsSync(join(run.out, 'model')), 'the trainer was stopped before the end');
      await sleep(50); // an unhandled rejection would be reported by now
      assert.deepEqual(unhandled.seen, []);
    } finally {
      unhandled.stop();
    }
  });

  it('a checkpoint with a dangling symlink fails an upload: failed outcome, nothing unhandled', async () => {
    const unhandled = watchUnhandled();
    try {
      const run = await fakeRun({ steps: 200, step_ms: 10, checkpoint_every: 2, dangling_checkpoint_at: 3 });
      const uploaded: number[] = [];
      const outcome = await runTrainer({
        python: run.python,
        args: run.args(),
        killGraceMs: 5000,
        onEvent: async (e) => {
          if (e.event !== 'checkpoint') return;
          await upload(join(run.out, e.path), join(run.dir, 'store', e.path));
          uploaded.push(e.step);
        },
      });
      assert.equal(outcome.kind, 'failed', JSON.stringify(outcome));
      assert.match(outcome.kind === 'failed' ? outcome.message : '', /^checkpoint upload failed: /);
      assert.deepEqual(uploaded, [2]);
      assert.ok(lstatSync(join(run.out, 'checkpoints', 'step-000003', 'dangling')).isSymbolicLink());
      await sleep(50);
      assert.deepEqual(unhandled.seen, []);
    } finally {
      unhandled.stop();
    }
  });

  it('oom_at_step: oom outcome naming the knobs to turn', async () => {
    const run = await fakeRun({ steps: 10, oom_at_step: 3 });
    const outcome = await runTrainer({ python: run.python, args: run.args() });
    assert.equal(outcome.kind, 'oom');
    const message = outcome.kind === 'oom' ? outcome.message : '';
    assert.match(message, /CUDA out of memory at step 3/);
    assert.match(message, /batch_size/);
    assert.match(message, /grad_accum/);
    assert.match(outcome.kind === 'oom' ? outcome.stderrTail : '', /torch\.OutOfMemoryError/);
  });

  it('bad_input → bad-input; exit_code_after_step → failed (retryable) with the crash in the tail', async () => {
    const bad = await fakeRun({ bad_input: 'config key lr: must be positive' });
    const badOutcome = await runTrainer({ python: bad.python, args: bad.args() });
    assert.deepEqual(
      badOutcome.kind === 'bad-input' && badOutcome.message,
      'config key lr: must be positive',
    );
    const crash = await fakeRun({ steps: 10, exit_code_after_step: 4, exit_code: 1 });
    const crashOutcome = await runTrainer({ python: crash.python, args: crash.args() });
    assert.equal(crashOutcome.kind, 'failed');
    assert.match(crashOutcome.kind === 'failed' ? crashOutcome.stderrTail : '', /fake crash after step 4/);
  });

  it('secrets in process.env do not reach the trainer; the lease env and the allowlist do', async () => {
    const saved = { ...process.env };
    process.env.AWS_SECRET_ACCESS_KEY = 'sekrit';
    process.env.TEMPORAL_API_KEY = 'sekrit';
    process.env.HF_TOKEN = 'sekrit';
    process.env.NCCL_DEBUG = 'WARN';
    try {
      const debugOf = async (opts: { env?: NodeJS.ProcessEnv; inheritEnv?: boolean }) => {
        const run = await fakeRun({ steps: 1, print_env: true });
        let debug:
          | { CUDA_VISIBLE_DEVICES: string | null; HF_HUB_OFFLINE: string | null; names: string[] }
          | undefined;
        const outcome = await runTrainer({
          python: run.python,
          args: run.args(),
          ...opts,
          onEvent: (e) => {
            if (e.event === 'debug') debug = e.env as typeof debug;
          },
        });
        assert.equal(outcome.kind, 'done');
        assert.ok(debug);
        return debug;
      };
      for (const env of [trainerEnv(process.env, { CUDA_VISIBLE_DEVICES: '1' }), undefined]) {
        const debug = await debugOf({ env });
        for (const secret of ['AWS_SECRET_ACCESS_KEY', 'TEMPORAL_API_KEY', 'HF_TOKEN'])
          assert.ok(!debug.names.includes(secret), `${secret} reached the trainer`);
        assert.ok(debug.names.includes('NCCL_DEBUG'));
        assert.ok(debug.names.includes('PYTHONUNBUFFERED'));
        if (env) {
          assert.equal(debug.CUDA_VISIBLE_DEVICES, '1');
          assert.equal(debug.HF_HUB_OFFLINE, '1');
          assert.ok(debug.names.includes('PYTHONPATH'));
        }
      }
      // Opting in to the old behaviour passes everything.
      const inherited = await debugOf({ env: {}, inheritEnv: true });
      assert.ok(inherited.names.includes('AWS_SECRET_ACCESS_KEY'));
    } finally {
      for (const k of ['AWS_SECRET_ACCESS_KEY', 'TEMPORAL_API_KEY', 'HF_TOKEN', 'NCCL_DEBUG'])
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
    }
  });

  it('exits when its parent dies (PDEATHSIG stand-in), checkpointing first', async () => {
    const run = await fakeRun({ steps: 100000, step_ms: 20, checkpoint_every: 1000, log_every: 1 });
    // A parent that starts the trainer (own group, as runTrainer does), reports its pid, then waits.
    const parentScript = `
      const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, ${JSON.stringify(run.args())}, { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
      c.stdout.on('data', () => {});
      console.log(c.pid);
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['-e', parentScript], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = await new Promise<number>((resolve) =>
      parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))),
    );
    await waitUntil('a step logged', 10_000, () => logSteps(run.out).length > 2);
    assert.ok(alive(pid));
    parent.kill('SIGKILL');
    await waitUntil('the orphaned trainer to exit', 10_000, () => !alive(pid));
    const steps = readdirSync(join(run.out, 'checkpoints')).filter((n) => n.startsWith('step-'));
    assert.equal(steps.length, 1, 'checkpoint written on the way out');
  });

  it('fakeTrainerPath points at the compiled script', () => {
    assert.ok(existsSync(fakeTrainerPath()));
  });
});
