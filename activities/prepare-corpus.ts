/**
 * Corpus preparation activities: fetch inputs, call lib/corpus, publish outputs with a manifest
 * written last, heartbeat. Layout under the artifact root:
 *   runs/<runId>/tokenizer/                    the tokenizer every later stage uses
 *   runs/<runId>/prepare-corpus/shards/<NNNNN>/ one committed artifact per shard (retries skip these)
 *   runs/<runId>/prepare-corpus/               the stage artifact; its manifest covers the shards too
 */
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import { type ArtifactStore, beginArtifact, cacheKey, fetchArtifact, isCommitted, openStore, readManifest } from '../lib/artifacts';
import {
  type CorpusLayout,
  detectLayout,
  type InputFile,
  loadTokenizer,
  finalizeCorpus,
  loadDocIdSet,
  planShards,
  prepareQueries,
  prepareShard,
  readCorpusTexts,
  type ShardResult,
  trainWordPieceTokenizer,
} from '../lib/corpus';
import { STAGES } from '../lib/constants';
import { ConfigError } from '../lib/errors';
import { openCorpusSource } from '../lib/datasets/source';
import type {
  CorpusPlan,
  FinalizeCorpusInput,
  PrepareCorpusInput,
  PrepareCorpusResult,
  PrepareShardInput,
  ShardSummary,
} from '../lib/pipeline/types';
import { atEdge } from './failures';
import { heartbeatEvery, type StageDeps, withTempDir } from './support';

const SHARD_RESULT = 'shard_result.json';

export function createPrepareCorpusActivities(deps: StageDeps) {
  const tokenizerCache = new Map<string, Promise<string>>();

  /** Downloads (once per worker process) the run's tokenizer artifact; returns its local directory. */
  const localTokenizer = (store: ArtifactStore, plan: CorpusPlan): Promise<string> => {
    const key = plan.tokenizerManifestSha256;
    const cached = tokenizerCache.get(key);
    if (cached) return cached;
    const target = join(deps.workDir, 'tokenizers', key);
    const dir = fetchArtifact(store, tokenizerPrefix(plan.runId), target).then(() => target);
    dir.catch(() => tokenizerCache.delete(key));
    tokenizerCache.set(key, dir);
    return dir;
  };

  return {
    /** Lists the source, detects its layout, publishes the tokenizer (trained when none is given), plans shards. */
    async planCorpus(input: PrepareCorpusInput): Promise<CorpusPlan> {
      return atEdge(async () => {
        const artifactRoot = input.artifacts ?? deps.defaultArtifactRoot;
        const store = openStore(artifactRoot);
        const source = await openCorpusSource(input.corpus.source);
        try {
          const format = input.corpus.format === 'auto' ? undefined : input.corpus.format;
          const layout = detectLayout(
            source.files.map((f) => f.name),
            format,
          );
          const tokenizer = await publishTokenizer(store, input, layout, source.files, deps);
          const shards = await planShards(layout, source.files, { shard_bytes: input.config.shard_bytes });
          const config = { ...input.config, format: layout.format };
          return {
            runId: input.runId,
            artifactRoot: store.rootUri,
            outputPrefix: `runs/${input.runId}/${STAGES.prepareCorpus}`,
            cacheKey: cacheKey({ stage: STAGES.prepareCorpus, inputs: [source.digest, tokenizer], config }),
            corpus: input.corpus,
            format: layout.format,
            tokenizerUri: store.uri(tokenizerPrefix(input.runId)),
            tokenizerManifestSha256: tokenizer,
            sourceDigest: source.digest,
            config,
            shards,
          };
        } finally {
          await source.store?.close();
          await store.close();
        }
      });
    },

    /** Prepares one shard and commits it as its own artifact; a committed shard is reused as is. */
    async prepareCorpusShard({ plan, shard }: PrepareShardInput): Promise<ShardSummary> {
      return atEdge(async () => {
        const store = openStore(plan.artifactRoot);
        const source = await openCorpusSource(plan.corpus.source);
        const prefix = `${plan.outputPrefix}/shards/${String(shard.index).padStart(5, '0')}`;
        try {
          if (await isCommitted(store, prefix)) return summarize(await readShardResult(store, prefix), prefix, true, (await readManifest(store, prefix)).sha256);
          const tokenizer = await loadTokenizer(await localTokenizer(store, plan));
          const input = source.files.find((f) => f.name === shard.file);
          if (!input) throw new Error(`shard ${shard.index}: ${shard.file} is no longer in ${plan.corpus.source}`);
          return await withTempDir(deps.workDir, 'shard-', async (dir) => {
            const stop = heartbeatEvery(Context.current(), 10_000);
            try {
              const result = await prepareShard(shard, input, tokenizer, plan.config, dir, (p) =>
                Context.current().heartbeat(p),
              );
              await writeFile(join(dir, SHARD_RESULT), JSON.stringify({ ...result, out_dir: '' }));
              const writer = beginArtifact(store, prefix, {
                stage: `${STAGES.prepareCorpus}/shard`,
                runId: plan.runId,
                cacheKey: plan.cacheKey,
                inputs: [{ name: 'corpus', uri: plan.corpus.source, manifestSha256: plan.sourceDigest }],
                config: { shard, ...plan.config },
              });
              await writer.addLocalDir(dir);
              const committed = await writer.commit({ ...flatStats(result) });
              return summarize(result, prefix, false, committed.manifestSha256);
            } finally {
              stop();
            }
          });
        } finally {
          await source.store?.close();
          await store.close();
        }
      });
    },

    /** Cross-shard checks, corpus index, queries and qrels, merged stats; commits the stage artifact. */
    async finalizeCorpus({ plan, shards }: FinalizeCorpusInput): Promise<PrepareCorpusResult> {
      return atEdge(async () => {
        const store = openStore(plan.artifactRoot);
        const source = await openCorpusSource(plan.corpus.source);
        const stop = heartbeatEvery(Context.current(), 10_000);
        try {
          return await withTempDir(deps.workDir, 'finalize-', async (dir) => {
            const results: ShardResult[] = [];
            for (const s of shards) {
              const local = join(dir, 'shards', String(s.index).padStart(5, '0'));
              await fetchArtifact(store, s.prefix, local);
              const result = JSON.parse(await readFile(join(local, SHARD_RESULT), 'utf8')) as ShardResult;
              results.push({ ...result, out_dir: local });
            }
            const out = join(dir, 'out');
            await mkdir(out, { recursive: true });
            const corpus = await finalizeCorpus(results, out);
            const layout = detectLayout(
              source.files.map((f) => f.name),
              plan.format,
            );
            const queries = hasQueries(layout)
              ? await prepareQueries(layout, source.files, await loadDocIdSet(join(out, corpus.doc_id_hashes)), plan.config, out)
              : undefined;
            const stats: Record<string, number> = {
              documents: corpus.stats.docs,
              passages: corpus.stats.passages,
              tokens: corpus.stats.tokens,
              pairs: corpus.stats.pairs,
              single_passage_docs: corpus.stats.single_passage_docs,
              shards: shards.length,
              queries: queries?.queries ?? 0,
              qrels: Object.values(queries?.qrels ?? {}).reduce((a, b) => a + b, 0),
              dropped_qrels: queries?.dropped_qrels ?? 0,
            };
            await writeFile(join(out, 'stats.json'), JSON.stringify({ ...corpus.stats, queries }, null, 2));
            const writer = beginArtifact(store, plan.outputPrefix, {
              stage: STAGES.prepareCorpus,
              runId: plan.runId,
              cacheKey: plan.cacheKey,
              inputs: [
                { name: 'corpus', uri: plan.corpus.source, manifestSha256: plan.sourceDigest },
                { name: 'tokenizer', uri: plan.tokenizerUri, manifestSha256: plan.tokenizerManifestSha256 },
              ],
              config: plan.config,
            });
            await writer.addLocalDir(out);
            for (const s of shards) await writer.addCommittedArtifact(s.prefix.slice(plan.outputPrefix.length + 1), s.manifestSha256);
            const committed = await writer.commit(stats);
            return { uri: committed.uri, manifestSha256: committed.manifestSha256, stats };
          });
        } finally {
          stop();
          await source.store?.close();
          await store.close();
        }
      });
    },
  };
}

function tokenizerPrefix(runId: string): string {
  return `runs/${runId}/tokenizer`;
}

function hasQueries(layout: CorpusLayout): boolean {
  return layout.queries.length > 0 || layout.format === 'squad';
}

/** Files of a model directory that make up its tokenizer (the rest, e.g. weights, is not copied). */
const TOKENIZER_FILES = ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json'];

/**
 * Publishes the run's tokenizer: a copy of the given one (local model dir, tokenizer.json, or an artifact
 * URI), or a WordPiece vocabulary trained on the corpus. Returns its manifest sha256.
 */
async function publishTokenizer(
  store: ArtifactStore,
  input: PrepareCorpusInput,
  layout: CorpusLayout,
  files: InputFile[],
  deps: StageDeps,
): Promise<string> {
  const prefix = tokenizerPrefix(input.runId);
  if (await isCommitted(store, prefix)) return (await readManifest(store, prefix)).sha256;
  return withTempDir(deps.workDir, 'tokenizer-', async (dir) => {
    const given = input.tokenizer.source;
    const stop = heartbeatEvery(Context.current(), 10_000);
    try {
      if (given) await copyTokenizer(given, dir);
      else await trainWordPieceTokenizer(readCorpusTexts(layout, files, input.config), input.config, dir);
    } finally {
      stop();
    }
    const tokenizer = await loadTokenizer(dir);
    const writer = beginArtifact(store, prefix, {
      stage: 'tokenizer',
      runId: input.runId,
      cacheKey: cacheKey({ stage: 'tokenizer', inputs: [given ?? 'trained'], config: given ? {} : input.config }),
      inputs: given ? [{ name: 'tokenizer', uri: given }] : [],
      config: given ? { source: given } : { vocab_size: input.config.vocab_size, lowercase: input.config.lowercase },
    });
    await writer.addLocalDir(dir);
    return (await writer.commit({ vocab_size: tokenizer.vocabSize })).manifestSha256;
  });
}

async function copyTokenizer(source: string, dir: string): Promise<void> {
  if (/^s3:\/\//i.test(source)) {
    const from = openStore(source);
    try {
      await fetchArtifact(from, '', dir);
    } finally {
      await from.close();
    }
    return;
  }
  const local = source.startsWith('file://') ? fileURLToPath(source) : source;
  const info = await stat(local).catch(() => undefined);
  if (!info) throw new ConfigError('tokenizer.source', `${source}: no such file or directory on this worker`);
  if (!info.isDirectory()) {
    await copyFile(local, join(dir, 'tokenizer.json'));
    return;
  }
  let copied = 0;
  for (const name of TOKENIZER_FILES) {
    await copyFile(join(local, name), join(dir, name)).then(
      () => copied++,
      () => undefined,
    );
  }
  if (copied === 0 || !(await stat(join(dir, 'tokenizer.json')).catch(() => undefined)))
    throw new ConfigError('tokenizer.source', `${source}: holds no tokenizer.json`);
}

async function readShardResult(store: ArtifactStore, prefix: string): Promise<ShardResult> {
  return JSON.parse((await store.get(`${prefix}/${SHARD_RESULT}`)).toString('utf8')) as ShardResult;
}

function summarize(result: ShardResult, prefix: string, reused: boolean, manifestSha256 = ''): ShardSummary {
  return {
    index: result.shard.index,
    prefix,
    manifestSha256,
    documents: result.stats.docs,
    passages: result.stats.passages,
    tokens: result.stats.tokens,
    reused,
  };
}

function flatStats(result: ShardResult): Record<string, number> {
  const { length_histogram: _histogram, ...counts } = result.stats;
  return counts;
}
