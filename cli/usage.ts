import { type ParseArgsConfig, parseArgs } from 'node:util';

/** Wrong flags or arguments: exit code 2 with the command's help. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly help: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Extra help lines (one per option, examples). */
  details: string[];
}

export function helpText(spec: CommandSpec): string {
  return [`cotmae ${spec.usage}`, '', spec.summary, '', ...spec.details].join('\n');
}

/** Parses argv for one command; unknown flags and bad values become UsageError. */
export function parseCommand(
  spec: CommandSpec,
  argv: string[],
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    return parseArgs({
      args: argv,
      options: { ...spec.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message, helpText(spec));
  }
}

/** A one-line progress bar for a TTY; plain lines otherwise. */
export function progressBar(done: number, total: number, width = 28): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(frac * 100)).padStart(3)}%`;
}
