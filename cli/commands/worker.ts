/** `cotmae worker cpu|gpu`: serve one task queue against TEMPORAL_ADDRESS until SIGINT/SIGTERM. */
import type { Worker } from '@temporalio/worker';
import { listGpus } from '../../activities/gpu';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../../lib/constants';
import { defaultArtifactRoot, workDir } from '../../lib/settings';
import {
  connectWorkerConnection,
  describeTemporalConnection,
  temporalConnectionOptionsFromEnv,
} from '../../lib/temporal/connection';
import { createCpuWorker } from '../../workers/cpu';
import { createGpuWorker } from '../../workers/gpu';
import { type CommandSpec, helpText, parseCommand, UsageError } from '../usage';

export const workerSpec: CommandSpec = {
  name: 'worker',
  usage: 'worker cpu|gpu [--max-activities N] [--gpus N]',
  summary: 'Run a worker: cpu serves the workflows and CPU activities, gpu the training activities.',
  options: { 'max-activities': { type: 'string' }, gpus: { type: 'string' } },
  details: [
    '  --max-activities N  cpu: concurrent activities (default: $COTMAE_CPU_ACTIVITIES or 2)',
    '  --gpus N            gpu: concurrent trainings = GPUs on this box (default: $COTMAE_GPUS, else nvidia-smi count, else 1)',
    'Env: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_* / TEMPORAL_API_KEY (see docs/operations.md),',
    '     COTMAE_ARTIFACTS (default artifact root), COTMAE_WORK_DIR (scratch and cache).',
    'SIGINT/SIGTERM shut the worker down gracefully (running activities get the grace period).',
  ],
};

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${flag} must be a positive integer`, helpText(workerSpec));
  return n;
}

export async function workerCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(workerSpec, argv);
  if (values.help) {
    process.stdout.write(`${helpText(workerSpec)}\n`);
    return 0;
  }
  const kind = positionals[0];
  if (positionals.length !== 1 || (kind !== 'cpu' && kind !== 'gpu'))
    throw new UsageError('worker needs cpu or gpu', helpText(workerSpec));
  const opts = temporalConnectionOptionsFromEnv();
  const connection = await connectWorkerConnection(opts);
  const deps = { defaultArtifactRoot: defaultArtifactRoot(), workDir: workDir() };
  let worker: Worker;
  let serves: string;
  try {
    if (kind === 'cpu') {
      const maxActivities =
        positiveInt(
          (values['max-activities'] as string) ?? process.env.COTMAE_CPU_ACTIVITIES,
          '--max-activities',
        ) ?? 2;
      worker = await createCpuWorker({ connection, namespace: opts.namespace, deps, maxActivities });
      serves = `${CPU_TASK_QUEUE}: workflows pipeline, prepareCorpus, pretrain; corpus activities (${maxActivities} at once)`;
    } else {
      const gpus =
        positiveInt((values.gpus as string) ?? process.env.COTMAE_GPUS, '--gpus') ??
        Math.max(1, (await listGpus()).length);
      worker = await createGpuWorker({ connection, namespace: opts.namespace, deps, gpus });
      serves = `${GPU_TASK_QUEUE}: pretrain (${gpus} at once)`;
    }
    process.stderr.write(
      `cotmae ${kind} worker on ${describeTemporalConnection(opts)}\n  serving ${serves}\n  artifacts default ${deps.defaultArtifactRoot}, work dir ${deps.workDir}\n`,
    );
    await worker.run();
    process.stderr.write(`cotmae ${kind} worker stopped\n`);
    return 0;
  } finally {
    await connection.close();
  }
}
