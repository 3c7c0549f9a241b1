/** `cotmae demo`: the main job on the embedded defaults, on a generated demo collection. */
import { join } from 'node:path';
import { openStore, readArtifactFile } from '../../lib/artifacts';
import { DEFAULT_DEMO_OPTIONS, writeDemoCollection } from '../../lib/demo/generate';
import type { StageResult } from '../../lib/pipeline/types';
import { defaultArtifactRoot, stateDir } from '../../lib/settings';
import { type CommandSpec, helpText, parseCommand } from '../usage';
import { buildInput, defaultRunId, extractForce, runPipeline } from './run';

export const demoSpec: CommandSpec = {
  name: 'demo',
  usage: 'demo [--corpus DIR] [--artifacts URI] [--keep-server]',
  summary:
    'Generate the demo collection (deterministic) and run the pipeline on it with the embedded defaults.',
  options: {
    corpus: { type: 'string' },
    artifacts: { type: 'string' },
    'keep-server': { type: 'boolean' },
    set: { type: 'string', multiple: true },
  },
  details: [
    '  --corpus DIR     run on this BEIR directory instead (e.g. ../shared/data/cranfield)',
    '  --artifacts URI  artifact root (default .state/artifacts)',
    '  --keep-server    keep the Web UI up afterwards (Ctrl-C to stop)',
    '  --set KEY=VALUE  override one pipeline input key (see `cotmae run --help`)',
    '  --force [STAGE...]  re-run stages even when a committed artifact with the same key exists',
    'A second demo run reuses every stage (the cache index maps each stage key to its committed artifact).',
  ],
};

export async function demoCommand(argv: string[]): Promise<number> {
  const { argv: rest, force } = extractForce(argv);
  const { values } = parseCommand(demoSpec, rest);
  if (values.help) {
    process.stdout.write(`${helpText(demoSpec)}\n`);
    return 0;
  }
  let corpus = values.corpus as string | undefined;
  if (!corpus) {
    corpus = join(stateDir(), 'demo', 'collection');
    const counts = await writeDemoCollection(corpus, DEFAULT_DEMO_OPTIONS);
    process.stderr.write(
      `demo collection: ${counts.documents} documents, ${counts.queries} queries → ${corpus}\n`,
    );
  }
  const input = await buildInput(
    {
      corpus,
      artifacts: (values.artifacts as string | undefined) ?? defaultArtifactRoot(),
      'run-id': defaultRunId('demo'),
      set: values.set,
    },
    force,
  );
  const started = Date.now();
  const result = await runPipeline(input, { keepServer: values['keep-server'] === true });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (!result) return 1;
  const s = result.corpus.stats;
  const hit = (stage: StageResult) =>
    stage.reused
      ? ` [cache hit: ${stage.reused === 'run' ? "this run's artifact" : 'reused from an earlier run'}]`
      : '';
  process.stdout.write(
    [
      `demo run ${result.runId} finished in ${seconds} s (dev server start included)${result.cacheHits.length ? ` (cache hits: ${result.cacheHits.join(', ')})` : ''}`,
      `  tokenizer: vocabulary ${result.tokenizer.stats.vocab_size}${hit(result.tokenizer)}`,
      `  corpus preparation: ${s.documents} documents → ${s.passages} passages, ${s.tokens} tokens, ${s.pairs} pre-training pairs, ${s.queries} queries, ${s.qrels} qrels (${s.shards} shards)`,
      `  artifact: ${result.corpus.uri}${hit(result.corpus)}`,
      ...(result.pretrain ? await pretrainLines(result.pretrain) : []),
      '',
    ].join('\n'),
  );
  return 0;
}

/** The loss curve in a few points (from the published train_log.jsonl) and the final loss components. */
async function pretrainLines(pretrain: StageResult): Promise<string[]> {
  const store = openStore(pretrain.uri);
  try {
    const log = (await readArtifactFile(store, '', 'train_log.jsonl'))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { step: number; loss: number });
    const marks = [0, 0.25, 0.5, 0.75, 1].map(
      (f) => log[Math.min(log.length - 1, Math.round(f * (log.length - 1)))],
    );
    const curve = [...new Set(marks)].map((m) => `step ${m?.step}: ${m?.loss.toFixed(3)}`).join(' → ');
    const s = pretrain.stats;
    const parts = ['mlm', 'ae_dense', 'ae_sparse', 'ar_dense', 'ar_sparse'].map(
      (k) => `${k}=${s[k]?.toFixed(3)}`,
    );
    return [
      `  pre-training loss: ${curve}`,
      `    final components: ${parts.join(', ')}`,
      `  model: ${pretrain.uri}model/${pretrain.reused ? ` [cache hit: ${pretrain.reused === 'run' ? "this run's artifact" : 'reused from an earlier run'}]` : ''}`,
    ];
  } finally {
    await store.close();
  }
}
