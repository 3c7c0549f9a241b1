/** `cotmae run`: start the pipeline and follow it (embedded dev server + workers when TEMPORAL_ADDRESS is unset). */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { CPU_TASK_QUEUE } from '../../lib/constants';
import { ConfigError } from '../../lib/errors';
import { validatePipelineInput } from '../../lib/pipeline/config';
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
    '  --detach             print the workflow id and return without following (needs TEMPORAL_ADDRESS)',
    '  --keep-server        embedded mode: keep the dev server and workers up after the run (Ctrl-C to stop)',
    '',
    'Temporal: with TEMPORAL_ADDRESS set, the run goes to that cluster (workers must be running: `cotmae worker cpu|gpu`).',
    'Without it, a dev server (Web UI on http://127.0.0.1:8233) and both workers run inside this command.',
  ],
};

export function defaultRunId(prefix = 'run'): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${prefix}-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Builds the pipeline input from --config and flags; every problem is a usage error (exit 2). */
export async function buildInput(
  values: Record<string, string | boolean | string[] | undefined>,
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

export function workflowIdFor(runId: string): string {
  return `pipeline-${runId}`;
}

async function startAndFollow(
  client: Client,
  input: PipelineInput,
  detach: boolean,
): Promise<PipelineResult | undefined> {
  const runId = input.run_id as string;
  const handle = await client.workflow.start('pipeline', {
    taskQueue: CPU_TASK_QUEUE,
    workflowId: workflowIdFor(runId),
    args: [input],
    staticSummary: `cotmae pipeline ${runId} on ${input.corpus.source}`,
  });
  process.stderr.write(`started workflow ${handle.workflowId}\n`);
  if (detach) {
    process.stdout.write(`${handle.workflowId}\n`);
    return undefined;
  }
  const { result, progress } = await followRun(handle);
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
      return await startAndFollow(client, input, opts.detach === true);
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
    const result = await startAndFollow(embedded.client, input, false);
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
  const { values } = parseCommand(runSpec, argv);
  if (values.help) {
    process.stdout.write(`${helpText(runSpec)}\n`);
    return 0;
  }
  const input = await buildInput(values);
  const result = await runPipeline(input, {
    detach: values.detach === true,
    keepServer: values['keep-server'] === true,
  });
  if (result) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}
