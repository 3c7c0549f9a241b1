/** `cotmae status RUN`: the run's state, stages, counts, artifact URIs, and live training progress. */
import { workflowIdFor } from '../../lib/pipeline/config';
import { describeProgress } from '../../lib/pipeline/progress';
import { connectClient, temporalConnectionOptionsFromEnv } from '../../lib/temporal/connection';
import { liveProgress } from '../../lib/temporal/live-progress';
import { type CommandSpec, helpText, parseCommand, UsageError } from '../usage';

export const statusSpec: CommandSpec = {
  name: 'status',
  usage: 'status RUN [--json]',
  summary: 'Show a run (run id or workflow id): state, stages, cache hits, counts, artifacts, training step.',
  options: { json: { type: 'boolean' } },
  details: [
    'Connects to TEMPORAL_ADDRESS (default 127.0.0.1:7233: `make temporal-up` or a running `cotmae run --keep-server`).',
    "The training step, loss, device and last checkpoint come from the running activity's heartbeat details.",
    '  --json   print {workflowId, status, progress} as JSON',
    'Exit code: 0 running or completed, 1 failed, cancelled, terminated or timed out.',
  ],
};

/** A run id or a workflow id (`pipeline-<run id>`). */
export function workflowIdOf(run: string): string {
  return run.startsWith('pipeline-') ? run : workflowIdFor(run);
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(statusSpec, argv);
  if (values.help) {
    process.stdout.write(`${helpText(statusSpec)}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('status needs exactly one RUN', helpText(statusSpec));
  const client = await connectClient(temporalConnectionOptionsFromEnv());
  try {
    const live = await liveProgress(client, workflowIdOf(positionals[0] as string));
    if (values.json) process.stdout.write(`${JSON.stringify(live, null, 2)}\n`);
    else {
      process.stdout.write(`${live.workflowId}: ${live.status}\n`);
      if (live.progress) process.stdout.write(`${describeProgress(live.progress)}\n`);
    }
    return live.status === 'RUNNING' || live.status === 'COMPLETED' ? 0 : 1;
  } finally {
    await client.connection.close();
  }
}
