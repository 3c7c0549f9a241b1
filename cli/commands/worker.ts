/** `cotmae worker cpu|gpu`: serve one task queue against TEMPORAL_ADDRESS until SIGINT/SIGTERM. */
import type { Worker } from '@temporalio/worker';
import { CPU_TASK_QUEUE, GPU_TASK_QUEUE } from '../../lib/constants';
import { defaultArtifactRoot, workDir } from '../../lib/settings';
import {
  connectWorkerConnection,
  describeTemporalConnection,
  temporalConnectionOptionsFromEnv,
} from '../../lib/temporal/connection';
import { GpuLeasePool, parseGpuSpec } from '../../lib/trainer/gpu-leases';
import { createCpuWorker } from '../../workers/cpu';
import { createGpuWorker } from '../../workers/gpu';
import { type CommandSpec, helpText, parseCommand, UsageError } from '../usage';

export const workerSpec: CommandSpec = {
  name: 'worker',
  usage: 'worker cpu|gpu [--max-activities N] [--gpus SPEC] [--shutdown-grace S]',
  summary: 'Run a worker: cpu serves the workflows and CPU activities, gpu the training activities.',
  options: {
    'max-activities': { type: 'string' },
    gpus: { type: 'string' },
    'shutdown-grace': { type: 'string' },
    'task-queue': { type: 'string' },
  },
  details: [
    '  --max-activities N  cpu: concurrent activities (default: $COTMAE_CPU_ACTIVITIES or 2)',
    '  --gpus SPEC         gpu: devices this worker leases, one training each: "0,1" (ids) or "2" (a count)',
    '                      (default: $COTMAE_GPUS, else what `nvidia-smi -L` lists, else 1 on a CPU machine)',
    '  --shutdown-grace S  seconds running activities get on SIGTERM/SIGINT (default: $COTMAE_SHUTDOWN_GRACE_S',
    "                      or 30, Kubernetes' default): trainers checkpoint at once, the checkpoint is uploaded,",
    '                      the attempt is handed back and resumes on another worker',
    '  --task-queue Q      serve Q instead of cotmae-cpu / cotmae-gpu (a GPU queue must be the twin of the',
    '                      CPU queue: cotmae-cpu@x ↔ cotmae-gpu@x)',
    'Env: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_* / TEMPORAL_API_KEY (see docs/operations.md),',
    '     COTMAE_ARTIFACTS (default artifact root), COTMAE_WORK_DIR (scratch and cache).',
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
  const graceS =
    positiveInt(
      (values['shutdown-grace'] as string) ?? process.env.COTMAE_SHUTDOWN_GRACE_S,
      '--shutdown-grace',
    ) ?? 30;
  const opts = temporalConnectionOptionsFromEnv();
  const connection = await connectWorkerConnection(opts);
  const drain = new AbortController();
  const deps = {
    defaultArtifactRoot: defaultArtifactRoot(),
    workDir: workDir(),
    drain: drain.signal,
    // The trainer must have written its checkpoint with time left to upload it within the grace.
    trainerKillGraceMs: Math.min(90_000, Math.floor((graceS * 1000) / 2)),
  };
  const taskQueue = values['task-queue'] as string | undefined;
  let worker: Worker;
  let serves: string;
  try {
    if (kind === 'cpu') {
      const maxActivities =
        positiveInt(
          (values['max-activities'] as string) ?? process.env.COTMAE_CPU_ACTIVITIES,
          '--max-activities',
        ) ?? 2;
      worker = await createCpuWorker({
        connection,
        namespace: opts.namespace,
        deps,
        maxActivities,
        taskQueue,
        shutdownGraceMs: graceS * 1000,
      });
      serves = `${taskQueue ?? CPU_TASK_QUEUE}: workflows pipeline, prepareCorpus, pretrain; CPU activities (${maxActivities} at once)`;
    } else {
      const gpus = new GpuLeasePool(await parseGpuSpec((values.gpus as string) ?? process.env.COTMAE_GPUS));
      worker = await createGpuWorker({
        connection,
        namespace: opts.namespace,
        deps: { ...deps, gpus },
        taskQueue,
        shutdownGraceMs: graceS * 1000,
      });
      serves = `${taskQueue ?? GPU_TASK_QUEUE}: training stages on devices ${gpus.devices.join(',')} (${gpus.size} at once)`;
    }
    // Shutdown: trainers are told first (they checkpoint and hand the attempt back), then the worker drains.
    const shutdown = (signal: NodeJS.Signals) => {
      process.stderr.write(`cotmae ${kind} worker: ${signal}, shutting down (grace ${graceS}s)\n`);
      drain.abort();
      if (worker.getState() === 'RUNNING') worker.shutdown();
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
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
