/**
 * Records the replay fixtures (test/fixtures/histories/*.binpb) from a real run: corpus preparation and a short
 * pre-training with the real trainer on the demo collection, on a private dev server. Run after a workflow
 * change that is deployed with `patched()` (docs/operations.md, "Deploying workflow changes"), and keep the
 * older fixtures: they are what runs in flight look like.
 *
 *   node dist/test/support/record-histories.js [LABEL]      (LABEL defaults to the date, e.g. 2026-12-03)
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { writeDemoCollection } from '../../lib/demo/generate';
import { repoRoot } from '../../lib/settings';
import { runPipeline, startPipelineEnv, TINY_MODEL_CONFIG } from './pipeline-env';

/** test/fixtures/histories/index.json: each recorded history and the workflow id it must be replayed as. */
export interface HistoryFixture {
  file: string;
  workflowType: string;
  /** Child workflow ids derive from it, so replay must use the recorded one. */
  workflowId: string;
}

async function main(): Promise<void> {
  const label = process.argv[2] ?? new Date().toISOString().slice(0, 10);
  const env = await startPipelineEnv();
  try {
    const scratch = await mkdtemp(join(tmpdir(), 'cotmae-record-'));
    await writeDemoCollection(join(scratch, 'demo'), { documents: 30, queriesPerDocument: 1, seed: 3 });
    await runPipeline(env, {
      run_id: 'recorded',
      artifacts: join(scratch, 'artifacts'),
      corpus: { source: join(scratch, 'demo') },
      prepare_corpus: { vocab_size: 600, shard_bytes: 65536, max_parallel_shards: 2 },
      pretrain: {
        model_config: TINY_MODEL_CONFIG,
        max_steps: 20,
        batch_size: 4,
        checkpoint_every: 10,
        log_every: 5,
      },
    });
    const dir = join(repoRoot(), 'test', 'fixtures', 'histories');
    const indexFile = join(dir, 'index.json');
    const index = JSON.parse(await readFile(indexFile, 'utf8').catch(() => '[]')) as HistoryFixture[];
    for (const [workflowType, workflowId] of [
      ['pipeline', 'pipeline-recorded'],
      ['prepareCorpus', 'pipeline-recorded/prepare-corpus'],
      ['pretrain', 'pipeline-recorded/pretrain'],
    ] as const) {
      const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
      // Binary protobuf, exactly what the server sent: no JSON conversion to drift between SDK versions.
      const file = `${label}-${workflowType}.binpb`;
      await writeFile(join(dir, file), temporal.api.history.v1.History.encode(history).finish());
      const entry = { file, workflowType, workflowId };
      const at = index.findIndex((e) => e.file === file);
      if (at >= 0) index[at] = entry;
      else index.push(entry);
      process.stdout.write(`${file}: ${history.events?.length ?? 0} events\n`);
    }
    await writeFile(indexFile, `${JSON.stringify(index, null, 2)}\n`);
  } finally {
    await env.stop();
  }
}

if (require.main === module)
  main().catch((err) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
