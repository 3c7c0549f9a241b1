/**
 * Cancellation of corpus work: every long loop takes an optional AbortSignal, checks it between batches and
 * rejects with an AbortError (name 'AbortError', as Temporal's activity runtime and `fetch` expect), whatever
 * reason the signal was aborted with (kept as `cause`).
 */

export class AbortError extends Error {
  constructor(message = 'aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** The error to reject with once `signal` is aborted: `<what> aborted` plus the signal's reason as cause. */
export function abortError(signal: AbortSignal | undefined, what: string): AbortError {
  const reason = signal?.reason as { message?: unknown } | undefined;
  const why = typeof reason?.message === 'string' && reason.message !== '' ? `: ${reason.message}` : '';
  return new AbortError(`${what} aborted${why}`, { cause: signal?.reason });
}

/** Throws abortError(signal, what) when the signal is aborted. */
export function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}

/** Name check (not instanceof): also true for Node's own AbortErrors and DOMExceptions. */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}
