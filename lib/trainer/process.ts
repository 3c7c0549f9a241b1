/**
 * Running the Python trainer as a child process: its own process group (so a signal reaches every
 * process it spawned, torchrun's included), one JSON event per stdout line, SIGTERM then SIGKILL on
 * stop, and its exit mapped to what the caller must do (done, retry, or give up).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

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
  | { event: 'error'; category: 'bad-input' | 'transient'; message: string };

export type TrainerOutcome =
  | { kind: 'done'; lastEvent: TrainerEvent | undefined }
  /** Exit 3: stopped by SIGTERM after writing a checkpoint; a retry resumes. */
  | { kind: 'interrupted'; stderrTail: string }
  /** Exit 2 or an error event of category bad-input: retrying cannot help. */
  | { kind: 'bad-input'; message: string; stderrTail: string }
  | { kind: 'failed'; message: string; stderrTail: string };

export interface RunTrainerOptions {
  python: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called for each JSON event line (other stdout lines are kept in the stderr tail). */
  onEvent?: (event: TrainerEvent) => void | Promise<void>;
  /** Aborting sends SIGTERM to the process group, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  killGraceMs?: number;
  /** Characters of stderr kept for error messages. */
  stderrTailChars?: number;
}

const EXIT_BAD_INPUT = 2;
const EXIT_INTERRUPTED = 3;

/** Sends `sig` to the whole process group of `child` (it was spawned detached, so pgid = pid). */
export function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // Already gone.
  }
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

/** Runs the trainer to completion (or until aborted) and classifies how it ended. */
export async function runTrainer(opts: RunTrainerOptions): Promise<TrainerOutcome> {
  const child = spawn(opts.python, opts.args, {
    cwd: opts.cwd,
    env: { ...process.env, PYTHONUNBUFFERED: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const tailLimit = opts.stderrTailChars ?? 4000;
  let tail = '';
  const keep = (text: string) => {
    tail = (tail + text).slice(-tailLimit);
  };
  child.stderr?.setEncoding('utf8').on('data', keep);

  let lastEvent: TrainerEvent | undefined;
  let handlers = Promise.resolve();
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    const event = parseEvent(line);
    if (!event) return keep(`${line}\n`);
    lastEvent = event;
    // Handlers (checkpoint uploads) run in order, one at a time.
    handlers = handlers.then(() => opts.onEvent?.(event));
  });

  // Without this, a SIGKILLed worker would leave the trainer running; the trainer also sets PDEATHSIG.
  const killOnExit = () => signalGroup(child, 'SIGKILL');
  process.once('exit', killOnExit);
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    signalGroup(child, 'SIGTERM');
    killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), opts.killGraceMs ?? 60_000);
  };
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });

  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve({ code: c, signal: s }));
    },
  ).finally(() => {
    if (killTimer) clearTimeout(killTimer);
    opts.signal?.removeEventListener('abort', onAbort);
    process.removeListener('exit', killOnExit);
    // A trainer that exited may have left children (dataloader workers): clean the group up.
    signalGroup(child, 'SIGKILL');
  });
  await handlers;
  return classify(code, signal, lastEvent, tail);
}

function classify(
  code: number | null,
  signal: NodeJS.Signals | null,
  last: TrainerEvent | undefined,
  stderrTail: string,
): TrainerOutcome {
  if (code === 0) return { kind: 'done', lastEvent: last };
  if (code === EXIT_INTERRUPTED) return { kind: 'interrupted', stderrTail };
  const reported = last?.event === 'error' ? last : undefined;
  if (code === EXIT_BAD_INPUT || reported?.category === 'bad-input')
    return {
      kind: 'bad-input',
      message: reported?.message ?? `trainer exited with code ${code}`,
      stderrTail,
    };
  const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
  return { kind: 'failed', message: reported?.message ?? `trainer ${how}`, stderrTail };
}
