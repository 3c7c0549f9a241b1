/**
 * Running the Python trainer as a child process: its own process group (so a signal reaches every
 * process it spawned, torchrun's included), one JSON event per stdout line, SIGTERM then SIGKILL on
 * stop, and its exit mapped to what the caller must do (done, retry, or give up).
 *
 * runTrainer never rejects because of an event handler and never leaves a rejected promise behind: the
 * first handler failure stops the trainer and becomes a `failed` outcome carrying the error. A trainer
 * that prints nothing for `stallTimeoutMs` is stopped and reported as `stalled`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { allowedTrainerEnv } from './python';

/** One line of the trainer's stdout (trainer/README.md, "CLI contract"). */
export type TrainerEvent =
  | { event: 'start'; resumed_from_step?: number | null; [key: string]: unknown }
  | {
      event: 'step';
      step: number;
      loss: number;
      losses?: Record<string, number>;
      lr?: number;
      tokens_per_s?: number;
    }
  | { event: 'checkpoint'; step: number; path: string }
  | { event: 'done'; step: number; [key: string]: unknown }
  | { event: 'error'; category: 'bad-input' | 'transient' | 'oom'; message: string; [key: string]: unknown }
  /** Diagnostics (the test stand-in's `print_env`); callers may ignore it. */
  | { event: 'debug'; [key: string]: unknown };

export type TrainerOutcome =
  | { kind: 'done'; lastEvent: TrainerEvent | undefined }
  /** Exit 3: stopped by SIGTERM after writing a checkpoint; a retry resumes. */
  | { kind: 'interrupted'; stderrTail: string }
  /** Exit 2 or an error event of category bad-input: retrying cannot help. */
  | { kind: 'bad-input'; message: string; stderrTail: string }
  /**
   * CUDA ran out of memory (an error event of category oom, or PyTorch's OOM message on stderr, whatever
   * the exit code). Retrying with the same config fails the same way; `message` names the knobs to turn.
   */
  | { kind: 'oom'; message: string; stderrTail: string }
  /**
   * No stdout line for `stallTimeoutMs` while alive: the trainer was stopped (SIGTERM, SIGKILL after the
   * grace period). Retryable: the next attempt resumes from the newest checkpoint.
   */
  | { kind: 'stalled'; message: string; stderrTail: string; idleMs: number }
  /**
   * A crash (retryable), or an `onEvent` handler failed (then `cause` is the handler's error and the
   * trainer was stopped).
   */
  | { kind: 'failed'; message: string; stderrTail: string; cause?: unknown };

export interface RunTrainerOptions {
  python: string;
  args: string[];
  cwd?: string;
  /**
   * The child's complete environment (PYTHONUNBUFFERED=1 is added): normally `trainerEnv(...)`. When
   * omitted, the allowlisted part of process.env (python.ts `allowedTrainerEnv`). process.env is never
   * merged in unless `inheritEnv` is true.
   */
  env?: NodeJS.ProcessEnv;
  /** Old behaviour, for callers that really want it: process.env underneath `env`. Default false. */
  inheritEnv?: boolean;
  /** Called for each JSON event line (other stdout lines are kept in the stderr tail). */
  onEvent?: (event: TrainerEvent) => void | Promise<void>;
  /**
   * Called synchronously for every stdout line, event or not, with Date.now(): the trainer is making
   * progress. A caller heartbeats only while this keeps being called (e.g. heartbeat when the last call
   * is recent), so a hung trainer stops heartbeating. A throw counts as a handler failure.
   */
  onLine?: (atMs: number) => void;
  /** Stop the trainer and return `stalled` after this long without a stdout line. Undefined: off. */
  stallTimeoutMs?: number;
  /** Aborting sends SIGTERM to the process group, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  killGraceMs?: number;
  /** Characters of stderr kept for error messages. */
  stderrTailChars?: number;
}

const EXIT_BAD_INPUT = 2;
const EXIT_INTERRUPTED = 3;

/** PyTorch's CUDA out-of-memory messages (torch ≥ 2.5 raises torch.OutOfMemoryError; older torch.cuda.…). */
const OOM_PATTERN = /CUDA out of memory|torch\.OutOfMemoryError|torch\.cuda\.OutOfMemoryError/;
/** Characters of the previous stderr chunk rescanned with the next one (a pattern split across chunks). */
const OOM_OVERLAP = 64;
const OOM_ADVICE =
  'lower batch_size, or raise grad_accum (smaller micro-batches, same effective batch), or use fewer/shorter passages per step';

/** Sends `sig` to the whole process group of `child` (it was spawned detached, so pgid = pid). */
export function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // Already gone.
  }
}

/** Trainers still running in this process; one 'exit' listener for all (no MaxListeners warning). */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * When this (worker) process exits, SIGKILL every trainer group it started: without this an exiting worker
 * would leave them running. (A SIGKILLed worker runs no hook: the trainer's PDEATHSIG covers that.)
 */
function watchParentExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) signalGroup(child, 'SIGKILL');
  });
}

function parseEvent(line: string): TrainerEvent | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as TrainerEvent;
    return typeof value === 'object' && value !== null && typeof value.event === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs the trainer to completion (or until aborted, stalled or a handler fails) and classifies how it ended. */
export async function runTrainer(opts: RunTrainerOptions): Promise<TrainerOutcome> {
  const base = opts.inheritEnv ? { ...process.env, ...opts.env } : (opts.env ?? allowedTrainerEnv());
  const child = spawn(opts.python, opts.args, {
    cwd: opts.cwd,
    env: { PYTHONUNBUFFERED: '1', ...base },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const tailLimit = opts.stderrTailChars ?? 4000;
  const killGraceMs = opts.killGraceMs ?? 60_000;
  let tail = '';
  // The OOM message is looked for in everything the trainer wrote, not only in the tail: torchrun prints
  // its own long summary after a worker's traceback.
  let oomLine: string | undefined;
  let scanCarry = '';
  const keep = (text: string) => {
    tail = (tail + text).slice(-tailLimit);
    if (oomLine !== undefined) return;
    const scanned = scanCarry + text;
    const m = OOM_PATTERN.exec(scanned);
    if (m) {
      const start = scanned.lastIndexOf('\n', m.index) + 1;
      const end = scanned.indexOf('\n', m.index);
      oomLine = scanned.slice(start, end < 0 ? undefined : end).trim();
    }
    scanCarry = scanned.slice(-OOM_OVERLAP);
  };
  child.stderr?.setEncoding('utf8').on('data', keep);

  let exited = false;
  let stopping = false;
  let killTimer: NodeJS.Timeout | undefined;
  /** SIGTERM to the group (the trainer checkpoints and exits 3), SIGKILL after the grace period. */
  const stop = () => {
    if (stopping || exited) return;
    stopping = true;
    signalGroup(child, 'SIGTERM');
    killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), killGraceMs);
  };

  // Handler failure: the first one wins; later events are not handed to onEvent any more. The trainer is
  // stopped with SIGTERM (not SIGKILL): it is healthy, and the checkpoint it writes on the way out stays on
  // this worker's disk, where the next attempt's "upload newer local checkpoints" step picks it up.
  let handlerFailure: { error: unknown; message: string } | undefined;
  const fail = (error: unknown, what: string) => {
    if (handlerFailure) return;
    handlerFailure = { error, message: `${what}: ${errorMessage(error)}` };
    stop();
  };

  // Stall watchdog: one timer, re-armed lazily for the remaining time when lines came in meanwhile.
  let lastLineAt = Date.now();
  let stalled: { idleMs: number } | undefined;
  let stallTimer: NodeJS.Timeout | undefined;
  const stallMs = opts.stallTimeoutMs;
  const armStallTimer = (delay: number) => {
    stallTimer = setTimeout(() => {
      stallTimer = undefined;
      if (exited || stopping) return;
      const idle = Date.now() - lastLineAt;
      if (stallMs !== undefined && idle >= stallMs) {
        stalled = { idleMs: idle };
        stop();
      } else if (stallMs !== undefined) armStallTimer(stallMs - idle);
    }, delay);
  };
  if (stallMs !== undefined) armStallTimer(stallMs);

  let lastEvent: TrainerEvent | undefined;
  let lastError: Extract<TrainerEvent, { event: 'error' }> | undefined;
  let handlers: Promise<void> = Promise.resolve();
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    const now = Date.now();
    lastLineAt = now;
    if (opts.onLine && !handlerFailure) {
      try {
        opts.onLine(now);
      } catch (err) {
        fail(err, 'onLine handler failed');
      }
    }
    const event = parseEvent(line);
    if (!event) return keep(`${line}\n`);
    lastEvent = event;
    if (event.event === 'error') lastError = event as Extract<TrainerEvent, { event: 'error' }>;
    const onEvent = opts.onEvent;
    if (!onEvent) return;
    // Handlers (checkpoint uploads) run in order, one at a time; this chain never rejects.
    handlers = handlers.then(async () => {
      if (handlerFailure) return;
      try {
        await onEvent(event);
      } catch (err) {
        fail(
          err,
          event.event === 'checkpoint' ? 'checkpoint upload failed' : `${event.event} handler failed`,
        );
      }
    });
  });

  running.add(child);
  watchParentExit();
  const onAbort = () => stop();
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });

  // A trainer that exited may have left children (dataloader workers) holding stdout open: kill the group
  // as soon as the trainer itself is gone, so that 'close' (all output read) follows.
  child.once('exit', () => {
    exited = true;
    signalGroup(child, 'SIGKILL');
  });
  let code: number | null;
  let signal: NodeJS.Signals | null;
  try {
    ({ code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve, reject) => {
        child.once('error', reject);
        child.once('close', (c, s) => resolve({ code: c, signal: s }));
      },
    ));
  } finally {
    exited = true;
    if (killTimer) clearTimeout(killTimer);
    if (stallTimer) clearTimeout(stallTimer);
    opts.signal?.removeEventListener('abort', onAbort);
    running.delete(child);
    signalGroup(child, 'SIGKILL');
  }
  await handlers;

  const stderrTail = tail;
  if (handlerFailure)
    return { kind: 'failed', message: handlerFailure.message, stderrTail, cause: handlerFailure.error };
  if (stalled && stallMs !== undefined)
    return {
      kind: 'stalled',
      message: `trainer printed nothing for ${stalled.idleMs} ms (stall timeout ${stallMs} ms) and was stopped`,
      stderrTail,
      idleMs: stalled.idleMs,
    };
  return classify(code, signal, lastEvent, lastError, oomLine, stderrTail);
}

function oomMessage(reported: string | undefined, stderrLine: string | undefined): string {
  const base = reported ?? stderrLine ?? 'CUDA out of memory';
  return /batch_size|grad_accum/.test(base) ? base : `${base} (${OOM_ADVICE})`;
}

function classify(
  code: number | null,
  signal: NodeJS.Signals | null,
  last: TrainerEvent | undefined,
  lastError: Extract<TrainerEvent, { event: 'error' }> | undefined,
  oomLine: string | undefined,
  stderrTail: string,
): TrainerOutcome {
  if (code === 0) return { kind: 'done', lastEvent: last };
  if (lastError?.category === 'oom' || oomLine !== undefined)
    return {
      kind: 'oom',
      message: oomMessage(lastError?.category === 'oom' ? lastError.message : undefined, oomLine),
      stderrTail,
    };
  if (code === EXIT_INTERRUPTED) return { kind: 'interrupted', stderrTail };
  if (code === EXIT_BAD_INPUT || lastError?.category === 'bad-input')
    return {
      kind: 'bad-input',
      message: lastError?.message ?? `trainer exited with code ${code}`,
      stderrTail,
    };
  const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
  return { kind: 'failed', message: lastError?.message ?? `trainer ${how}`, stderrTail };
}
