/**
 * A stand-in for `python -m cotmae_trainer <command>` that follows trainer/README.md "CLI contract" without
 * PyTorch: run it with node (`python = process.execPath`, `args = [fakeTrainerPath(), 'pretrain',
 * '--config', FILE, '--data', DIR, '--tokenizer', DIR, '--output', DIR, '--resume'?]`; unknown flags are
 * ignored). Its behaviour comes from the config JSON's `fake` object (FakeTrainerOptions), over the entry
 * for the config's `seed` in the JSON file given with `--behaviours FILE` (`{"5": {"hang_after_step": 3}}`:
 * for configs that must stay valid pipeline configs); the usual keys `max_steps`, `checkpoint_every`,
 * `keep_checkpoints` and `log_every` are honoured too (fake options win).
 *
 * What it does, as the real one: a `start` event (resumed_from_step), `step` events (loss + losses, also
 * appended to OUT/train_log.jsonl), checkpoints OUT/checkpoints/step-NNNNNN/ (state.json with the step and
 * the sha256 of --data/corpus.json, train_log.jsonl, COMPLETE written last, built in a .tmp- dir and
 * renamed), pruning to keep_checkpoints, SIGTERM → the current step finishes, a checkpoint, the transient
 * error line, exit 3; at the end OUT/model/fake.json and OUT/decoders/fake.json ({cuda_visible_devices,
 * started_ms, finished_ms, step, data_digest}), OUT/pretrain_summary.json and a `done` event;
 * `--resume` continues from the newest complete checkpoint (and without it, existing checkpoints are exit
 * 2); it exits when its parent dies (the real one's PDEATHSIG).
 *
 * Dependency-free (node: modules only) so it runs anywhere node does.
 */
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

export interface FakeTrainerOptions {
  /** Optimizer steps to run (default: config max_steps, else 10). */
  steps?: number;
  /** Sleep per step (default 0). */
  step_ms?: number;
  checkpoint_every?: number;
  log_every?: number;
  /** Same as log_every. */
  log_every_override?: number;
  /** After this step's lines: print nothing more and sleep forever. */
  hang_after_step?: number;
  /** While hung, ignore SIGTERM (only SIGKILL or the parent's death ends it). */
  ignore_sigterm?: boolean;
  /** After this step's lines: crash (stderr traceback, exit `exit_code`, default 1). */
  exit_code_after_step?: number;
  exit_code?: number;
  /** The checkpoint of this step (written even off the checkpoint_every grid) holds a broken symlink. */
  dangling_checkpoint_at?: number;
  /** Emit {"event":"debug","env":{CUDA_VISIBLE_DEVICES, HF_HUB_OFFLINE, PYTHONUNBUFFERED, names:[...]}} first. */
  print_env?: boolean;
  /** During this step: the oom error line, PyTorch's OOM message on stderr, exit 2. */
  oom_at_step?: number;
  /** Message of the oom error line (default: "CUDA out of memory at step N: tried to allocate 2.00 GiB"). */
  oom_message?: string;
  /** Exit 2 at once with a bad-input error line (true, or the message). */
  bad_input?: boolean | string;
}

/** The compiled script, to pass as the first argument after `node`. */
export function fakeTrainerPath(): string {
  return __filename;
}

interface Args {
  command: string | undefined;
  config?: string;
  data?: string;
  tokenizer?: string;
  output?: string;
  behaviours?: string;
  resume: boolean;
}

const VALUE_FLAGS = new Set(['config', 'data', 'tokenizer', 'output', 'behaviours']);
/** Flags without a value (so the word after them is not taken as one). */
const BOOLEAN_FLAGS = new Set(['resume', 'dry-run']);

function parseArgs(argv: string[]): Args {
  const out: Args = { command: undefined, resume: false };
  const values: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) {
      out.command ??= arg;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (BOOLEAN_FLAGS.has(name)) {
      if (name === 'resume') out.resume = true;
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !(argv[i + 1] as string).startsWith('--')) value = argv[++i];
    // Unknown flags (and their values) are ignored.
    if (VALUE_FLAGS.has(name) && value !== undefined) values[name] = value;
  }
  return { ...out, ...values };
}

function emit(event: Record<string, unknown>): void {
  // Pipes are synchronous on Linux: nothing is lost when process.exit follows.
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function badInput(message: string): never {
  emit({ event: 'error', category: 'bad-input', message });
  process.stderr.write(`cotmae_trainer: error: ${message}\n`);
  process.exit(2);
}

function stepName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

function completeSteps(outDir: string): number[] {
  const dir = join(outDir, 'checkpoints');
  if (!existsSync(dir)) return [];
  const steps: number[] = [];
  for (const name of readdirSync(dir)) {
    const m = /^step-(\d+)$/.exec(name);
    if (m && existsSync(join(dir, name, 'COMPLETE'))) steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

function lossesAt(step: number): Record<string, number> {
  const base = 10 / (1 + 0.1 * step);
  const losses = {
    mlm: base,
    ae_dense: base * 1.01,
    ae_sparse: base * 1.02,
    ar_dense: base * 1.03,
    ar_sparse: base * 1.04,
  };
  return { loss: Object.values(losses).reduce((a, b) => a + b, 0), ...losses };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function intOption(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) ? value : fallback;
}

async function main(): Promise<void> {
  const started = Date.now();
  const args = parseArgs(process.argv.slice(2));
  if (!args.command) badInput('usage: cotmae_trainer <command> --config FILE --output DIR [...]');
  if (!args.config) badInput('--config is required');
  if (!args.output) badInput('--output is required');
  const configFile = args.config as string;
  const out = args.output as string;
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    badInput(`config ${configFile}: ${(err as Error).message}`);
  }
  let byBehaviour: FakeTrainerOptions = {};
  if (args.behaviours) {
    try {
      const table = JSON.parse(readFileSync(args.behaviours, 'utf8')) as Record<string, FakeTrainerOptions>;
      byBehaviour = table[String(config.seed)] ?? {};
    } catch (err) {
      badInput(`--behaviours ${args.behaviours}: ${(err as Error).message}`);
    }
  }
  const fake: FakeTrainerOptions = { ...byBehaviour, ...((config.fake ?? {}) as FakeTrainerOptions) };
  if (fake.bad_input) badInput(typeof fake.bad_input === 'string' ? fake.bad_input : 'fake bad input');

  const steps = intOption(fake.steps, intOption(config.max_steps, 10));
  const checkpointEvery = Math.max(
    1,
    intOption(fake.checkpoint_every, intOption(config.checkpoint_every, 1000)),
  );
  const logEvery = Math.max(
    1,
    intOption(fake.log_every_override, intOption(fake.log_every, intOption(config.log_every, 1))),
  );
  const keep = Math.max(1, intOption(config.keep_checkpoints, 3));
  const stepMs = intOption(fake.step_ms, 0);

  let dataDigest: string | null = null;
  if (args.data && existsSync(join(args.data, 'corpus.json')))
    dataDigest = createHash('sha256')
      .update(readFileSync(join(args.data, 'corpus.json')))
      .digest('hex');

  // A dead parent leaves stdout without a reader: writes fail with EPIPE, which must not kill us before
  // the checkpoint (the real trainer ignores SIGPIPE and BrokenPipeError the same way).
  process.stdout.on('error', () => {});
  // Stop requests: SIGTERM, or the parent's death (polled, like PR_SET_PDEATHSIG → SIGTERM).
  let stopRequested = false;
  let hung = false;
  let wake: (() => void) | undefined;
  process.on('SIGTERM', () => {
    if (hung && fake.ignore_sigterm) return;
    stopRequested = true;
    if (hung) wake?.();
  });
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid === parent) return;
    if (hung) process.exit(1); // a hung trainer whose parent is gone: never linger
    stopRequested = true;
  }, 100).unref();

  mkdirSync(join(out, 'checkpoints'), { recursive: true });
  // Leftovers (.tmp-* dirs, incomplete step dirs) go first.
  for (const name of readdirSync(join(out, 'checkpoints')))
    if (!/^step-\d+$/.test(name) || !existsSync(join(out, 'checkpoints', name, 'COMPLETE')))
      rmSync(join(out, 'checkpoints', name), { recursive: true, force: true });
  const existing = completeSteps(out);
  if (existing.length > 0 && !args.resume)
    badInput(`${out} already has checkpoints (${existing.map(stepName).join(', ')}); pass --resume`);
  const resumedFrom = args.resume ? (existing.at(-1) ?? null) : null;
  const logFile = join(out, 'train_log.jsonl');
  if (resumedFrom !== null) {
    // The step log as of the checkpoint: lines logged after it by the interrupted attempt are dropped.
    const saved = join(out, 'checkpoints', stepName(resumedFrom), 'train_log.jsonl');
    writeFileSync(logFile, existsSync(saved) ? readFileSync(saved) : '');
  } else writeFileSync(logFile, '');

  if (fake.print_env)
    emit({
      event: 'debug',
      env: {
        CUDA_VISIBLE_DEVICES: process.env.CUDA_VISIBLE_DEVICES ?? null,
        HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE ?? null,
        PYTHONUNBUFFERED: process.env.PYTHONUNBUFFERED ?? null,
        names: Object.keys(process.env).sort(),
      },
    });
  const { fake: _fake, ...plainConfig } = config;
  emit({
    event: 'start',
    command: args.command,
    config: plainConfig,
    device: process.env.CUDA_VISIBLE_DEVICES ? `cuda:0` : 'cpu',
    world_size: 1,
    resumed_from_step: resumedFrom,
    dry_run: false,
    fake: true,
    pid: process.pid,
  });

  const writeCheckpoint = (step: number) => {
    const dir = join(out, 'checkpoints');
    const tmp = join(dir, `.tmp-${stepName(step)}-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    writeFileSync(
      join(tmp, 'state.json'),
      JSON.stringify({ step, data_digest: dataDigest, losses: lossesAt(step), pid: process.pid }),
    );
    writeFileSync(join(tmp, 'train_log.jsonl'), readFileSync(logFile));
    if (fake.dangling_checkpoint_at === step) symlinkSync('does-not-exist', join(tmp, 'dangling'));
    writeFileSync(join(tmp, 'COMPLETE'), `${step}\n`);
    const final = join(dir, stepName(step));
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    emit({ event: 'checkpoint', step, path: `checkpoints/${stepName(step)}` });
    for (const old of completeSteps(out).slice(0, -keep))
      rmSync(join(dir, stepName(old)), { recursive: true, force: true });
  };

  let step = resumedFrom ?? 0;
  while (step < steps) {
    const current = step + 1;
    await sleep(stepMs); // also lets SIGTERM and the parent poll in between steps
    if (fake.oom_at_step === current) {
      const message = fake.oom_message ?? `CUDA out of memory at step ${current}: tried to allocate 2.00 GiB`;
      emit({ event: 'error', category: 'oom', message, step: current });
      process.stderr.write(
        'Traceback (most recent call last):\n  File "cotmae_trainer/commands/pretrain.py", line 1, in main\n' +
          'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB\n',
      );
      process.exit(2);
    }
    step = current;
    const losses = lossesAt(step);
    if (step % logEvery === 0 || step === steps) {
      const { loss, ...parts } = losses;
      const line = {
        event: 'step',
        step,
        loss,
        losses: parts,
        lr: 1e-4,
        tokens_per_s: 1000,
        epoch: step / steps,
      };
      appendFileSync(logFile, `${JSON.stringify(line)}\n`);
      emit(line);
    }
    if (step % checkpointEvery === 0 || step === steps || fake.dangling_checkpoint_at === step)
      writeCheckpoint(step);
    if (fake.exit_code_after_step === step) {
      process.stderr.write(
        `Traceback (most recent call last):\nRuntimeError: fake crash after step ${step}\n`,
      );
      process.exit(fake.exit_code ?? 1);
    }
    if (fake.hang_after_step === step) {
      hung = true;
      // Sleep until SIGTERM (unless ignored), SIGKILL or the parent's death.
      await new Promise<void>((resolve) => {
        wake = resolve;
        setInterval(() => {}, 60_000);
      });
      hung = false;
    }
    if (stopRequested && step < steps) {
      if (!completeSteps(out).includes(step)) writeCheckpoint(step);
      emit({
        event: 'error',
        category: 'transient',
        message: `interrupted by SIGTERM at step ${step}; resume from checkpoints/${stepName(step)}`,
        step,
        checkpoint: `checkpoints/${stepName(step)}`,
      });
      process.exit(3);
    }
  }

  // Export (temp dir + rename, as the real one), summary, done.
  for (const part of ['model', 'decoders']) {
    const tmp = join(out, `.tmp-${part}-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    writeFileSync(
      join(tmp, 'fake.json'),
      JSON.stringify({
        fake: true,
        part,
        step,
        data_digest: dataDigest,
        cuda_visible_devices: process.env.CUDA_VISIBLE_DEVICES ?? null,
        started_ms: started,
        finished_ms: Date.now(),
      }),
    );
    rmSync(join(out, part), { recursive: true, force: true });
    renameSync(tmp, join(out, part));
  }
  const { loss, ...parts } = lossesAt(step);
  writeFileSync(
    join(out, 'pretrain_summary.json'),
    JSON.stringify({
      steps: step,
      final_losses: { loss, ...parts },
      resumed_from_step: resumedFrom,
      world_size: 1,
      device: 'cpu',
      dry_run: false,
      wall_time_s: (Date.now() - started) / 1000,
      config: plainConfig,
    }),
  );
  emit({ event: 'done', step, model: 'model', decoders: 'decoders' });
  process.exit(0);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`fake trainer crashed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
