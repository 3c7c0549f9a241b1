/**
 * Corpus preparation activities: fetch inputs, call lib/corpus, publish outputs with a manifest
 * written last, heartbeat. Layout under the artifact root:
 *   runs/<runId>/tokenizer/                    the tokenizer every later stage uses
 *   runs/<runId>/prepare-corpus/shards/<NNNNN>/ one committed artifact per shard (retries skip these)
 *   runs/<runId>/prepare-corpus/               the stage artifact; its manifest covers the shards too
 */
import { copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import {
  type ArtifactStore,
  type ArtifactWriter,
  beginArtifact,
  computeCacheKey,
  fetchArtifact,
  isCommitted,
  joinKey,
  joinPrefix,
  openStore,
  readManifest,
  sha256Hex,
  stagePrefix,
} from '../lib/artifacts';
import { STAGES } from '../lib/constants';
import {
  type CorpusLayout,
  detectLayout,
  finalizeCorpus,
  type InputFile,
  loadDocIdSet,
  loadTokenizer,
  planShards,
  prepareQueries,
  prepareShard,
  readCorpusTexts,
  type ShardResult,
  trainWordPieceTokenizer,
} from '../lib/corpus';
import { openCorpusSource } from '../lib/datasets/source';
import { ConfigError } from '../lib/errors';
import { corpusPrepConfig } from '../lib/pipeline/config';
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
            outputPrefix: stagePrefix(input.runId, STAGES.prepareCorpus),
            cacheKey: computeCacheKey({
              stage: STAGES.prepareCorpus,
              inputs: [
                { name: 'corpus', manifestSha256: source.digest },
                { name: 'tokenizer', manifestSha256: tokenizer },
              ],
              // Fan-out width does not change the output, so it is not part of the key.
              config: corpusPrepConfig(config),
            }),
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
        const prefix = shardPrefix(plan, shard.index);
        try {
          if (await isCommitted(store, prefix))
            return summarize(
              await readShardResult(store, prefix),
              prefix,
              true,
              (await readManifest(store, prefix)).manifestSha256,
            );
          const tokenizer = await loadTokenizer(await localTokenizer(store, plan));
          const input = source.files.find((f) => f.name === shard.file);
          if (!input)
            throw new Error(`shard ${shard.index}: ${shard.file} is no longer in ${plan.corpus.source}`);
          return await withTempDir(deps.workDir, 'shard-', async (dir) => {
            const stop = heartbeatEvery(Context.current(), 10_000);
            try {
              const result = await prepareShard(
                shard,
                input,
                tokenizer,
                corpusPrepConfig(plan.config),
                dir,
                (p) => Context.current().heartbeat(p),
              );
              await writeFile(join(dir, SHARD_RESULT), JSON.stringify({ ...result, out_dir: '' }));
              const writer = await beginArtifact(
                store,
                prefix,
                {
                  stage: `${STAGES.prepareCorpus}-shard`,
                  runId: plan.runId,
                  cacheKey: plan.cacheKey,
                  inputs: [{ name: 'corpus', uri: plan.corpus.source, manifestSha256: plan.sourceDigest }],
                  config: { shard, ...plan.config },
                },
                { overwrite: true },
              );
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
            // Shards sit where they are in the stage folder, so corpus.json's relative shard dirs hold there too.
            const out = join(dir, 'out');
            const results: ShardResult[] = [];
            for (const s of shards) {
              const local = join(out, shardFolder(s.index));
              await fetchArtifact(store, s.prefix, local);
              const result = JSON.parse(await readFile(join(local, SHARD_RESULT), 'utf8')) as ShardResult;
              results.push({ ...result, out_dir: local });
            }
            const corpus = await finalizeCorpus(results, out);
            const layout = detectLayout(
              source.files.map((f) => f.name),
              plan.format,
            );
            const queries = hasQueries(layout)
              ? await prepareQueries(
                  layout,
                  source.files,
                  await loadDocIdSet(join(out, corpus.doc_id_hashes)),
                  corpusPrepConfig(plan.config),
                  out,
                )
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
              reused_shards: shards.filter((s) => s.reused).length,
            };
            await writeFile(join(out, 'stats.json'), JSON.stringify({ ...corpus.stats, queries }, null, 2));
            const writer = await beginArtifact(
              store,
              plan.outputPrefix,
              {
                stage: STAGES.prepareCorpus,
                runId: plan.runId,
                cacheKey: plan.cacheKey,
                inputs: [
                  { name: 'corpus', uri: plan.corpus.source, manifestSha256: plan.sourceDigest },
                  { name: 'tokenizer', uri: plan.tokenizerUri, manifestSha256: plan.tokenizerManifestSha256 },
                ],
                config: plan.config,
              },
              { overwrite: true },
            );
            await rm(join(out, 'shards'), { recursive: true, force: true }); // already in the store
            await writer.addLocalDir(out);
            await recordShardFiles(store, writer, shards);
            const committed = await writer.commit(stats);
            return {
              artifactRoot: plan.artifactRoot,
              prefix: committed.prefix,
              tokenizerPrefix: tokenizerPrefix(plan.runId),
              uri: committed.uri,
              manifestSha256: committed.manifestSha256,
              stats,
            };
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
  return stagePrefix(runId, 'tokenizer');
}

/** A shard's folder inside the stage folder. */
function shardFolder(index: number): string {
  return `shards/${String(index).padStart(5, '0')}`;
}

function shardPrefix(plan: CorpusPlan, index: number): string {
  return joinPrefix(plan.outputPrefix, shardFolder(index));
}

/** The stage manifest covers the shard files too, so one verify checks the whole prepared corpus. */
async function recordShardFiles(
  store: ArtifactStore,
  writer: ArtifactWriter,
  shards: ShardSummary[],
): Promise<void> {
  for (const s of shards) {
    const { manifest } = await readManifest(store, s.prefix);
    for (const f of manifest.files) writer.recordFile({ ...f, path: joinKey(shardFolder(s.index), f.path) });
  }
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
  if (await isCommitted(store, prefix)) return (await readManifest(store, prefix)).manifestSha256;
  return withTempDir(deps.workDir, 'tokenizer-', async (dir) => {
    const given = input.tokenizer.source;
    const stop = heartbeatEvery(Context.current(), 10_000);
    try {
      if (given) await copyTokenizer(given, dir);
      else
        await trainWordPieceTokenizer(
          readCorpusTexts(layout, files, corpusPrepConfig(input.config)),
          input.config,
          dir,
        );
    } finally {
      stop();
    }
    const tokenizer = await loadTokenizer(dir);
    const digest = sha256Hex(await readFile(join(dir, 'tokenizer.json')));
    const config = given
      ? { source: given }
      : { vocab_size: input.config.vocab_size, lowercase: input.config.lowercase };
    const writer = await beginArtifact(
      store,
      prefix,
      {
        stage: 'tokenizer',
        runId: input.runId,
        cacheKey: computeCacheKey({
          stage: 'tokenizer',
          inputs: [{ name: 'tokenizer', manifestSha256: digest }],
          config,
        }),
        inputs: given ? [{ name: 'tokenizer', uri: given, manifestSha256: digest }] : [],
        config,
      },
      { overwrite: true },
    );
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
  return JSON.parse((await store.get(prefix + SHARD_RESULT)).toString('utf8')) as ShardResult;
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
