/** `cotmae cancel RUN`: cancel a run; its trainers checkpoint and upload before it ends Canceled. */
import { CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import { connectClient, temporalConnectionOptionsFromEnv } from '../../lib/temporal/connection';
import { type CommandSpec, helpText, parseCommand, UsageError } from '../usage';
import { workflowIdOf } from './status';

export const cancelSpec: CommandSpec = {
  name: 'cancel',
  usage: 'cancel RUN [--no-wait]',
  summary: 'Cancel a run: trainers checkpoint (SIGTERM), the checkpoint is uploaded, the run ends Canceled.',
  options: { 'no-wait': { type: 'boolean' } },
  details: [
    'Same as "Request cancellation" in the Web UI. Start the run id again to resume it later.',
    '  --no-wait   return once the cancellation is requested (default: wait until the run has ended)',
  ],
};

export async function cancelCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(cancelSpec, argv);
  if (values.help) {
    process.stdout.write(`${helpText(cancelSpec)}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('cancel needs exactly one RUN', helpText(cancelSpec));
  const client = await connectClient(temporalConnectionOptionsFromEnv());
  try {
    const handle = client.workflow.getHandle(workflowIdOf(positionals[0] as string));
    await handle.cancel();
    process.stderr.write(`cancellation requested for ${handle.workflowId}\n`);
    if (values['no-wait']) return 0;
    try {
      await handle.result();
      process.stdout.write(`${handle.workflowId}: completed before the cancellation took effect\n`);
      return 0;
    } catch (err) {
      if (err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure) {
        process.stdout.write(`${handle.workflowId}: CANCELED\n`);
        return 0;
      }
      throw err;
    }
  } finally {
    await client.connection.close();
  }
}
