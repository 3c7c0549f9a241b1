import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  ChildWorkflowFailure,
} from '@temporalio/common';
import { defineQuery, isCancellation } from '@temporalio/workflow';
import type { PipelineProgress } from '../lib/pipeline/progress';

/**
 * `progress` query of every pipeline workflow: its stages, their state, counts and artifact URIs. Progress
 * of a running activity (training step, loss) is not copied in here: it lives in the activity's heartbeat
 * details, which `cotmae status` and `cotmae run` read with describe (history stays bounded).
 */
export const progressQuery = defineQuery<PipelineProgress>('progress');

/** True for a cancellation however deep it is wrapped (activity → child workflow → here). */
export function wasCancelled(err: unknown): boolean {
  if (isCancellation(err)) return true;
  let cause: unknown = err;
  while (cause instanceof ActivityFailure || cause instanceof ChildWorkflowFailure) cause = cause.cause;
  return cause instanceof CancelledFailure;
}

/** The innermost message of a failure: what the user needs to see (e.g. "corpus.jsonl:12: ..."). */
export function rootMessage(err: unknown): string {
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  if (cause instanceof ApplicationFailure && cause.type) return `${cause.type}: ${cause.message}`;
  return cause instanceof Error ? cause.message : String(cause);
}
