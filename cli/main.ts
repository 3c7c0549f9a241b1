#!/usr/bin/env node
/** `cotmae`: the command line. Exit codes: 0 ok, 1 failure, 2 usage (bad flags, bad config). */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { ConfigError, PipelineError } from '../lib/errors';
import { cancelCommand, cancelSpec } from './commands/cancel';
import { dataCommand, dataSpec } from './commands/data';
import { demoCommand, demoSpec } from './commands/demo';
import { RunIdTakenError, runCommand, runSpec } from './commands/run';
import { statusCommand, statusSpec } from './commands/status';
import { workerCommand, workerSpec } from './commands/worker';
import { RunCancelledError, RunFailedError } from './follow';
import { type CommandSpec, UsageError } from './usage';

const COMMANDS: { spec: CommandSpec; run: (argv: string[]) => Promise<number> }[] = [
  { spec: runSpec, run: runCommand },
  { spec: statusSpec, run: statusCommand },
  { spec: cancelSpec, run: cancelCommand },
  { spec: workerSpec, run: workerCommand },
  { spec: dataSpec, run: dataCommand },
  { spec: demoSpec, run: demoCommand },
];

const MAIN_HELP = [
  'cotmae: train and deploy CoT-MAE v2 retrievers with durable Temporal workflows',
  '',
  'Commands:',
  ...COMMANDS.map((c) => `  ${c.spec.usage.padEnd(52)} ${c.spec.summary}`),
  '',
  "Run `cotmae COMMAND --help` for a command's options.",
].join('\n');

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${MAIN_HELP}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.spec.name === name);
  if (!command) {
    process.stderr.write(`unknown command ${JSON.stringify(name)}\n\n${MAIN_HELP}\n`);
    return 2;
  }
  // The AWS SDK warns on every start that Node 20 support ends; it says nothing about this run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // Worker and SDK chatter only when something is wrong; COTMAE_LOG_LEVEL=INFO for more.
  // Signals are the commands' own business (a worker tells its trainers before it drains).
  Runtime.install({
    logger: new DefaultLogger((process.env.COTMAE_LOG_LEVEL as 'WARN') ?? 'WARN'),
    shutdownSignals: [],
  });
  try {
    return await command.run(rest);
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`error: ${err.message}\n\n${err.help}\n`);
    return 2;
  }
  if (err instanceof ConfigError || err instanceof RunIdTakenError) {
    process.stderr.write(`error: ${err.message}\n`);
    return 2;
  }
  if (err instanceof RunFailedError || err instanceof RunCancelledError || err instanceof PipelineError) {
    process.stderr.write(`error: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`fatal: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
