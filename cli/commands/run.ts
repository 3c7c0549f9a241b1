/** `cotmae run`: start the pipeline and follow it (embedded dev server + workers when TEMPORAL_ADDRESS is unset). */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { CPU_TASK_QUEUE, STAGE_ORDER } from '../../lib/constants';
import { ConfigError } from '../../lib/errors';
import { validatePipelineInput, workflowIdFor } from '../../lib/pipeline/config';
import { describeProgress } from '../../lib/pipeline/progress';
import type { PipelineInput, PipelineResult } from '../../lib/pipeline/types';
import { defaultArtifactRoot, workDir } from '../../lib/settings';
import { connectClient } from '../../lib/temporal/connection';
import { startEmbedded } from '../embedded';
import { followRun } from '../follow';
import { type CommandSpec, helpText, parseCommand, UsageError } from '../usage';

export const runSpec: CommandSpec = {
  name: 'run',
  usage: 'run [--corpus DIR|URI] [--config input.json] [options]',
  summary: 'Start the pipeline workflow and follow its progress until it finishes.',
  options: {
    corpus: { type: 'string' },
    format: { type: 'string' },
    tokenizer: { type: 'string' },
    config: { type: 'string' },
    artifacts: { type: 'string' },
    'run-id': { type: 'string' },
    detach: { type: 'boolean' },
    'keep-server': { type: 'boolean' },
    set: { type: 'string', multiple: true },
    'from-stage': { type: 'string' },
  },
  details: [
    'Options:',
    '  --corpus DIR|URI     corpus directory (BEIR, MS MARCO, JSONL documents, SQuAD) or imported dataset URI',
    '  --format F           auto (default), beir, msmarco, jsonl, squad',
    '  --tokenizer DIR      local HF model/tokenizer directory; default: train WordPiece on the corpus',
    '  --config FILE        the pipeline input as JSON (same object the Web UI takes); flags override it',
    '  --artifacts URI      artifact root: s3://bucket/prefix, file:///dir or a path (default $COTMAE_ARTIFACTS or .state/artifacts)',
    '  --run-id ID          run id (default: run-<timestamp>); artifacts go to runs/<run-id>/',
    '  --set KEY=VALUE      override one input key, repeatable: --set prepare_corpus.empty_text=skip',
    '                       (VALUE is parsed as JSON when it is valid JSON, else taken as a string)',
    `  --force [STAGE...]   re-run these stages (${STAGE_ORDER.join(', ')}; none named = all) even when a`,
    '                       committed artifact with the same cache key exists; also what allows starting a',
    '                       completed run id again, or replacing an artifact made with another config',
    '  --from-stage STAGE   re-run STAGE and every stage after it; the ones before are reused',
    '  --detach             print the workflow id and return without following (needs TEMPORAL_ADDRESS)',
    '  --keep-server        embedded mode: keep the dev server and workers up after the run (Ctrl-C to stop)',
    '',
    'Run ids: one run id is one workflow, pipeline-<run-id>. A running one cannot be started twice; a failed or',
    'cancelled one is retried by starting it again (completed stages are reused); a completed one needs --force.',
    'Temporal: with TEMPORAL_ADDRESS set, the run goes to that cluster (workers must be running: `cotmae worker cpu|gpu`).',
    'Without it, a dev server (Web UI on http://127.0.0.1:8233) and both workers run inside this command, on task',
    'queues of their own (other runs on the same dev server never reach them).',
  ],
};

/**
 * `--force` takes optional stage names (`--force`, `--force pretrain`, `--force tokenizer pretrain`,
 * `--force=pretrain,prepare-corpus`), which node's parseArgs cannot express: they are taken out first.
 */
export function extractForce(argv: string[]): { argv: string[]; force: true | string[] | undefined } {
  const rest: string[] = [];
  let force: true | string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg.startsWith('--force=')) {
      const named = arg
        .slice('--force='.length)
        .split(',')
        .filter((x) => x !== '');
      force = force === true ? true : [...(force ?? []), ...named];
    } else if (arg === '--force') {
      const named: string[] = [];
      while (i + 1 < argv.length && STAGE_ORDER.includes(argv[i + 1] as never))
        named.push(argv[++i] as string);
      force = named.length === 0 || force === true ? true : [...(force ?? []), ...named];
    } else rest.push(arg);
  }
  return { argv: rest, force };
}

export function defaultRunId(prefix = 'run'): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${prefix}-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Builds the pipeline input from --config and flags; every problem is a usage error (exit 2). */
export async function buildInput(
  values: Record<string, string | boolean | string[] | undefined>,
  force?: true | string[],
): Promise<PipelineInput> {
  let base: Record<string, unknown> = {};
  if (typeof values.config === 'string') {
    try {
      base = JSON.parse(await readFile(values.config, 'utf8'));
    } catch (err) {
      throw new UsageError(`--config ${values.config}: ${(err as Error).message}`, helpText(runSpec));
    }
  }
  const input = { ...base } as Record<string, unknown> & Partial<PipelineInput>;
  const corpus = { ...((input.corpus as object | undefined) ?? {}) } as Record<string, unknown>;
  if (typeof values.corpus === 'string')
    corpus.source = /^[a-z0-9]+:\/\//i.test(values.corpus) ? values.corpus : resolve(values.corpus);
  if (typeof values.format === 'string') corpus.format = values.format;
  input.corpus = corpus as never;
  if (typeof values.tokenizer === 'string') input.tokenizer = { source: resolve(values.tokenizer) };
  input.artifacts = (values.artifacts as string | undefined) ?? input.artifacts ?? defaultArtifactRoot();
  input.run_id = (values['run-id'] as string | undefined) ?? input.run_id ?? defaultRunId();
  for (const assignment of (values.set as string[] | undefined) ?? []) applySet(input, assignment);
  if (force !== undefined) input.force = force;
  if (typeof values['from-stage'] === 'string') input.from_stage = values['from-stage'];
  const problems = validatePipelineInput(input);
  if (problems.length > 0)
    throw new UsageError(`invalid pipeline input:\n  ${problems.join('\n  ')}`, helpText(runSpec));
  return input as PipelineInput;
}

/** `a.b.c=value`: sets a nested key of the input; VALUE is JSON when it parses, else a string. */
export function applySet(input: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  const path = eq > 0 ? assignment.slice(0, eq).split('.') : [];
  if (path.length === 0 || path.some((k) => k === '' || k === '__proto__'))
    throw new UsageError(
      `--set ${assignment}: expected KEY=VALUE, e.g. prepare_corpus.seed=7`,
      helpText(runSpec),
    );
  const raw = assignment.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // A bare word: keep it as a string.
  }
  let node = input;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    node[key] = typeof next === 'object' && next !== null && !Array.isArray(next) ? { ...next } : {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

/**
 * Starts run `input.run_id` as workflow `pipeline-<run_id>`: refused while that workflow runs; allowed again
 * after it failed, was cancelled or terminated (that is how a run is retried); after it completed, only with
 * `force` (the workflow id is the run's single owner, so two workflows never write one prefix).
 */
export async function startRun(client: Client, input: PipelineInput, taskQueue: string): Promise<string> {
  const runId = input.run_id as string;
  const workflowId = workflowIdFor(runId);
  try {
    const handle = await client.workflow.start('pipeline', {
      taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: input.force ? 'ALLOW_DUPLICATE' : 'ALLOW_DUPLICATE_FAILED_ONLY',
      workflowIdConflictPolicy: 'FAIL',
      staticSummary: `cotmae pipeline ${runId} on ${input.corpus.source}`,
    });
    return handle.workflowId;
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const existing = await client.workflow
      .getHandle(workflowId)
      .describe()
      .catch(() => undefined);
    const status = existing?.status.name ?? 'UNKNOWN';
    const since = existing?.startTime ? ` since ${existing.startTime.toISOString()}` : '';
    if (status === 'RUNNING')
      throw new RunIdTakenError(
        `run ${runId} is already running as workflow ${workflowId} (execution ${existing?.runId ?? '?'}${since}); follow it with \`cotmae status ${runId}\`, cancel it with \`cotmae cancel ${runId}\`, or pick another --run-id`,
      );
    throw new RunIdTakenError(
      `run ${runId} already ${status === 'COMPLETED' ? 'completed' : `ended (${status})`} as workflow ${workflowId}${since}; see \`cotmae status ${runId}\`. Start it again with --force (stages whose inputs and config did not change are reused; --force STAGE re-runs a stage), or pick another --run-id`,
    );
  }
}

/** Starting a run id that its workflow holds: a usage problem, not a crash. */
export class RunIdTakenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunIdTakenError';
  }
}

async function startAndFollow(
  client: Client,
  input: PipelineInput,
  detach: boolean,
  taskQueue: string,
): Promise<PipelineResult | undefined> {
  const workflowId = await startRun(client, input, taskQueue);
  process.stderr.write(`started workflow ${workflowId}\n`);
  if (detach) {
    process.stdout.write(`${workflowId}\n`);
    return undefined;
  }
  const { result, progress } = await followRun(client, workflowId);
  if (progress) process.stderr.write(`${describeProgress({ ...progress, state: 'completed' })}\n`);
  return result;
}

/** Runs the pipeline; returns the result (undefined when detached). */
export async function runPipeline(
  input: PipelineInput,
  opts: { detach?: boolean; keepServer?: boolean } = {},
) {
  if (process.env.TEMPORAL_ADDRESS) {
    const client = await connectClient();
    try {
      return await startAndFollow(client, input, opts.detach === true, CPU_TASK_QUEUE);
    } finally {
      await client.connection.close();
    }
  }
  if (opts.detach)
    throw new ConfigError('TEMPORAL_ADDRESS', '--detach needs a running cluster (set TEMPORAL_ADDRESS)');
  const embedded = await startEmbedded({ defaultArtifactRoot: defaultArtifactRoot(), workDir: workDir() });
  process.stderr.write(
    `Temporal Web UI: ${embedded.uiUrl}/namespaces/default/workflows (embedded dev server ${embedded.address})\n`,
  );
  try {
    const result = await startAndFollow(embedded.client, input, false, embedded.taskQueue);
    if (opts.keepServer) {
      process.stderr.write(`keeping the dev server up: ${embedded.uiUrl} — Ctrl-C to stop\n`);
      await new Promise<void>((resolveStop) => {
        process.once('SIGINT', resolveStop);
        process.once('SIGTERM', resolveStop);
      });
    }
    return result;
  } finally {
    await embedded.stop();
  }
}

export async function runCommand(argv: string[]): Promise<number> {
  const { argv: rest, force } = extractForce(argv);
  const { values } = parseCommand(runSpec, rest);
  if (values.help) {
    process.stdout.write(`${helpText(runSpec)}\n`);
    return 0;
  }
  const input = await buildInput(values, force);
  const result = await runPipeline(input, {
    detach: values.detach === true,
    keepServer: values['keep-server'] === true,
  });
  if (result) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}
