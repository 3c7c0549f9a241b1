/** prepareCorpusLocal: the whole preparation in one process, for the benchmark, tests and users. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CorpusTokenizer, loadTokenizer, trainWordPieceTokenizer } from '../tokenizer';
import { resolveCorpusPrepConfig } from './config';
import { finalizeCorpus, loadDocIdSet } from './finalize';
import { fileByName, listLocalInputs } from './input';
import { detectLayoutFromListing } from './layout';
import { planShardRanges } from './plan';
import { prepareQueriesFiles } from './queries';
import { runShard } from './shard';
import { readCorpusTexts } from './texts';
import type {
  CorpusLayout,
  CorpusManifest,
  CorpusPrepConfig,
  InputFile,
  QueriesResult,
  ShardProgress,
  ShardResult,
} from './types';

export interface LocalPrepOptions {
  /** Model dir or tokenizer.json; absent = train a WordPiece tokenizer on the corpus into outDir/tokenizer. */
  tokenizer?: string;
  onProgress?: (p: ShardProgress) => void;
  /** Aborts between batches (AbortError); a tokenizer training in progress finishes first. */
  signal?: AbortSignal;
}

export interface LocalPrepResult {
  manifest: CorpusManifest;
  /** Absent for layouts without queries (jsonl). */
  queries: QueriesResult | undefined;
  /** Path of the tokenizer.json used. */
  tokenizer: string;
}

/**
 * Prepare `sourceDir` into `outDir`: config.json, tokenizer/ (when trained), shards/NNNNN/ (one per shard),
 * corpus.json, doc_ids.hashes, queries.jsonl and qrels/. Shards run one after another (encoding already
 * uses every core).
 */
export async function prepareCorpusLocal(
  sourceDir: string,
  outDir: string,
  config: Partial<CorpusPrepConfig>,
  opts: LocalPrepOptions = {},
): Promise<LocalPrepResult> {
  const cfg = resolveCorpusPrepConfig(config);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
  const inputs = await listLocalInputs(sourceDir);
  const layout = detectLayoutFromListing(
    inputs.map((f) => f.name),
    cfg.format,
  );
  const { signal } = opts;
  const tokenizer = opts.tokenizer
    ? await loadTokenizer(opts.tokenizer)
    : await trainWordPieceTokenizer(
        readCorpusTexts(layout, inputs, cfg, signal),
        { ...cfg, source: sourceDir },
        join(outDir, 'tokenizer'),
      );
  const results = await prepareAllShards(layout, inputs, tokenizer, cfg, outDir, opts.onProgress, signal);
  const manifest = await finalizeCorpus(results, outDir, signal, { source: sourceDir });
  const hasQueries = layout.format === 'squad' || layout.queries.length > 0;
  const queries = hasQueries
    ? await prepareQueriesFiles(layout, inputs, await loadDocIdSet(outDir), cfg, outDir, signal)
    : undefined;
  return { manifest, queries, tokenizer: tokenizer.file };
}

async function prepareAllShards(
  layout: CorpusLayout,
  inputs: readonly InputFile[],
  tokenizer: CorpusTokenizer,
  cfg: CorpusPrepConfig,
  outDir: string,
  onProgress?: (p: ShardProgress) => void,
  signal?: AbortSignal,
): Promise<ShardResult[]> {
  const results: ShardResult[] = [];
  for (const shard of await planShardRanges(layout, inputs, { shard_bytes: cfg.shard_bytes, signal })) {
    const dir = join(outDir, 'shards', String(shard.index).padStart(5, '0'));
    const input = fileByName(inputs, shard.file);
    results.push(await runShard(shard, input, tokenizer, cfg, dir, onProgress, signal));
  }
  return results;
}
