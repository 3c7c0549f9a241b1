/** `cotmae status RUN`: the run's state, stages, counts and artifact URIs. */
import { describeProgress, type PipelineProgress } from '../../lib/pipeline/progress';
import { connectClient, temporalConnectionOptionsFromEnv } from '../../lib/temporal/connection';
import { type CommandSpec, helpText, parseCommand, UsageError } from '../usage';
import { workflowIdFor } from './run';

export const statusSpec: CommandSpec = {
  name: 'status',
  usage: 'status RUN [--json]',
  summary: 'Show a run (run id or workflow id): state, stages, counts and artifacts.',
  options: { json: { type: 'boolean' } },
  details: [
    'Connects to TEMPORAL_ADDRESS (default 127.0.0.1:7233: `make temporal-up` or a running `cotmae run --keep-server`).',
    '  --json   print the progress object as JSON',
  ],
};

export async function statusCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(statusSpec, argv);
  if (values.help) {
    process.stdout.write(`${helpText(statusSpec)}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('status needs exactly one RUN', helpText(statusSpec));
  const run = positionals[0] as string;
  const client = await connectClient(temporalConnectionOptionsFromEnv());
  try {
    const handle = client.workflow.getHandle(run.startsWith('pipeline-') ? run : workflowIdFor(run));
    const description = await handle.describe();
    let progress: PipelineProgress | undefined;
    try {
      progress = await handle.query<PipelineProgress>('progress');
    } catch {
      // A closed run whose workers are gone cannot answer queries; the status line still helps.
    }
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ workflowId: handle.workflowId, status: description.status.name, progress }, null, 2)}\n`,
      );
    } else {
      process.stdout.write(`${handle.workflowId}: ${description.status.name}\n`);
      if (progress) process.stdout.write(`${describeProgress(progress)}\n`);
    }
    return description.status.name === 'FAILED' ? 1 : 0;
  } finally {
    await client.connection.close();
  }
}
