/** Following a pipeline run from the CLI: a progress line per stage, then the result or the failure. */
import { CancelledFailure, type Client, WorkflowFailedError } from '@temporalio/client';
import { describeProgress, type PipelineProgress } from '../lib/pipeline/progress';
import type { PipelineResult } from '../lib/pipeline/types';
import { liveProgress } from '../lib/temporal/live-progress';
import { progressBar } from './usage';

const POLL_MS = 1000;

function renderLine(progress: PipelineProgress): string {
  const current = [...progress.stages].reverse().find((s) => s.state === 'running') ?? progress.stages.at(-1);
  if (!current) return `run ${progress.runId}: starting`;
  const bar = current.total
    ? ` ${progressBar(current.done ?? 0, current.total)} ${current.done ?? 0}/${current.total}`
    : '';
  const loss = current.counts?.loss !== undefined ? ` loss ${current.counts.loss.toFixed(4)}` : '';
  return `${current.stage}: ${current.state}${bar}${loss}${current.message ? ` ${current.message}` : ''}`;
}

/**
 * Polls the run (its query, its children's, its training heartbeats) until the workflow closes; returns its
 * result, or throws RunFailedError / RunCancelledError.
 */
export async function followRun(
  client: Client,
  workflowId: string,
  out: NodeJS.WriteStream = process.stderr,
): Promise<{ result: PipelineResult; progress: PipelineProgress | undefined }> {
  const handle = client.workflow.getHandle(workflowId);
  const tty = out.isTTY === true;
  let last = '';
  let progress: PipelineProgress | undefined;
  const resultPromise = handle.result() as Promise<PipelineResult>;
  let settled = false;
  resultPromise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  while (!settled) {
    try {
      progress = (await liveProgress(client, workflowId)).progress ?? progress;
      const line = progress ? renderLine(progress) : '';
      if (line !== '' && line !== last) {
        out.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
        last = line;
      }
    } catch {
      // Not started yet or between tasks: the next poll will tell.
    }
    await Promise.race([resultPromise.catch(() => undefined), new Promise((r) => setTimeout(r, POLL_MS))]);
  }
  if (tty) out.write('\n');
  try {
    const result = await resultPromise;
    // The last poll may predate the final update; a closed run still answers while its worker is up.
    progress = await handle.query<PipelineProgress>('progress').catch(() => progress);
    return { result, progress };
  } catch (err) {
    progress = await handle.query<PipelineProgress>('progress').catch(() => progress);
    if (err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure)
      throw new RunCancelledError(workflowId, progress);
    throw new RunFailedError(workflowId, failureMessage(err), progress);
  }
}

export class RunFailedError extends Error {
  constructor(
    readonly workflowId: string,
    reason: string,
    readonly progress: PipelineProgress | undefined,
  ) {
    super(`run ${workflowId} failed: ${reason}${progress ? `\n${describeProgress(progress)}` : ''}`);
    this.name = 'RunFailedError';
  }
}

/** The run was cancelled (Web UI, `cotmae cancel`): its trainers checkpointed; re-running the run id resumes. */
export class RunCancelledError extends Error {
  constructor(
    readonly workflowId: string,
    readonly progress: PipelineProgress | undefined,
  ) {
    super(
      `run ${workflowId} was cancelled${progress ? `\n${describeProgress(progress)}` : ''}\nStart the same run id again to resume it (completed stages are reused).`,
    );
    this.name = 'RunCancelledError';
  }
}

/** The innermost cause of a workflow failure: what the user needs (e.g. "corpus.jsonl:12: ..."). */
export function failureMessage(err: unknown): string {
  let cause: unknown = err instanceof WorkflowFailedError ? err.cause : err;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return cause instanceof Error ? cause.message : String(cause);
}
