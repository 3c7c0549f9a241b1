/**
 * The progress model shared by workflows (which keep it), the `progress` query (which returns it)
 * and the CLI (which draws it). Pure data: safe to import into the workflow sandbox.
 */

export type StageState = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' | 'skipped';

export interface StageProgress {
  stage: string;
  state: StageState;
  /** Work units done / total for this stage (shards, steps...), when known. */
  done?: number;
  total?: number;
  /** Counters worth showing (documents, passages, tokens, loss...). */
  counts?: Record<string, number>;
  /** URI of the stage's committed artifact (its manifest folder). */
  artifact?: string;
  /** The stage did not run: its committed output was reused ('run': this run's, 'cache': another run's). */
  reused?: 'run' | 'cache';
  message?: string;
}

export interface PipelineProgress {
  runId: string;
  state: 'running' | 'completed' | 'failed' | 'cancelled';
  stages: StageProgress[];
}

/** Returns a copy of `progress` with `stage` merged in (appended when new). */
export function withStage(progress: PipelineProgress, update: StageProgress): PipelineProgress {
  const stages = progress.stages.some((s) => s.stage === update.stage)
    ? progress.stages.map((s) => (s.stage === update.stage ? { ...s, ...update } : s))
    : [...progress.stages, update];
  return { ...progress, stages };
}

/** One line per stage, for `setCurrentDetails` (the Web UI) and `cotmae status`. */
export function describeProgress(progress: PipelineProgress): string {
  const lines = progress.stages.map((s) => {
    const frac = s.total ? ` ${s.done ?? 0}/${s.total}` : '';
    const counts = s.counts
      ? ` (${Object.entries(s.counts)
          .map(([k, v]) => `${k}=${formatCount(v)}`)
          .join(', ')})`
      : '';
    const where = s.artifact ? ` → ${s.artifact}` : '';
    const hit = s.reused
      ? ` [cache hit: ${s.reused === 'run' ? "this run's artifact" : 'from another run'}]`
      : '';
    return `${s.stage}: ${s.state}${hit}${frac}${counts}${where}${s.message ? ` — ${s.message}` : ''}`;
  });
  return [`run ${progress.runId}: ${progress.state}`, ...lines].join('\n');
}

function formatCount(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(4);
}
