/**
 * Tokenizer + corpus preparation activities: fetch inputs, call lib/corpus, publish outputs with a manifest
 * written last, heartbeat. Layout under the artifact root:
 *   runs/<runId>/tokenizer/                     the tokenizer every later stage uses
 *   runs/<runId>/prepare-corpus/plans/<sha>.json the shard plan (shard activities read it by reference)
 *   runs/<runId>/prepare-corpus/shards/<NNNNN>/  one committed artifact per shard (retries reuse these)
 *   runs/<runId>/prepare-corpus/                the stage artifact; its manifest covers the shards too
 *   cache/<key>.json                            the cross-run cache index (lib/artifacts)
 * Every reuse is checked: a committed artifact is reused only when its recorded cache key is the expected
 * one; another key is a StaleArtifactError (non-retryable, naming both) unless the stage is forced.
 */
import { copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import {
  type ArtifactStore,
  beginArtifact,
  checkCommitted,
  computeCacheKey,
  contentDigest,
  type ExpectedArtifact,
  fetchArtifact,
  joinPrefix,
  lookupCacheEntry,
  openStore,
  type ReadManifestResult,
  readArtifactFile,
  readManifest,
  recordCacheEntry,
  sha256Hex,
  stagePrefix,
} from '../lib/artifacts';
import { STAGES } from '../lib/constants';
import {
  AbortError,
  type CorpusLayout,
  type CorpusTokenizer,
  detectLayout,
  finalizeCorpus,
  type InputFile,
  loadDocIdSet,
  loadTokenizer,
  localFileAt,
  planShards,
  prepareQueries,
  prepareShard,
  type ShardResult,
  trainWordPieceTokenizerOffThread,
} from '../lib/corpus';
import { openCorpusSource } from '../lib/datasets/source';
import { BadInputError, ConfigError } from '../lib/errors';
import { corpusCodeVersion } from '../lib/pipeline/code-versions';
import { corpusPrepConfig } from '../lib/pipeline/config';
import type {
  CorpusPlan,
  FinalizeCorpusInput,
  PlanCorpusResult,
  PlanRef,
  PrepareCorpusInput,
  PrepareShardInput,
  ShardOutcome,
  StageResult,
} from '../lib/pipeline/types';
import { atEdge } from './failures';
import { DEFAULT_HEARTBEAT_EVERY_MS, heartbeatEvery, type StageDeps, withTempDir } from './support';
import { stageResultOf } from './trainer-stage';

const SHARD_RESULT = 'shard_result.json';

export function createPrepareCorpusActivities(deps: StageDeps) {
  const every = deps.heartbeatEveryMs ?? DEFAULT_HEARTBEAT_EVERY_MS;
  const tokenizerCache = new Map<string, Promise<string>>();
  const planCache = new Map<string, Promise<CorpusPlan>>();

  /** Downloads (once per worker process) the run's tokenizer artifact; returns its local directory. */
  const localTokenizer = (store: ArtifactStore, plan: CorpusPlan): Promise<string> => {
    const key = plan.tokenizer.contentDigest;
    const cached = tokenizerCache.get(key);
    if (cached) return cached;
    const target = join(deps.workDir, 'tokenizers', key);
    const dir = fetchArtifact(store, plan.tokenizer.prefix, target).then(() => target);
    dir.catch(() => tokenizerCache.delete(key));
    tokenizerCache.set(key, dir);
    return dir;
  };

  const loadedTokenizers = new Map<string, Promise<CorpusTokenizer>>();
  /** The run's tokenizer, loaded once per worker process (encoding is stateless: shards share it). */
  const loadedTokenizer = (store: ArtifactStore, plan: CorpusPlan): Promise<CorpusTokenizer> => {
    const key = plan.tokenizer.contentDigest;
    let loaded = loadedTokenizers.get(key);
    if (!loaded) {
      loaded = localTokenizer(store, plan).then((dir) => loadTokenizer(dir));
      loaded.catch(() => loadedTokenizers.delete(key));
      loadedTokenizers.set(key, loaded);
    }
    return loaded;
  };

  /** The plan a shard activity refers to, read once per worker process (checked against its digest). */
  const loadPlan = (store: ArtifactStore, ref: PlanRef): Promise<CorpusPlan> => {
    const cached = planCache.get(ref.sha256);
    if (cached) return cached;
    const key = planKey(ref.runId, ref.sha256);
    const plan = store.get(key).then((body) => {
      if (sha256Hex(body) !== ref.sha256)
        throw new BadInputError(store.uri(key), undefined, 'the shard plan changed after it was written');
      return JSON.parse(body.toString('utf8')) as CorpusPlan;
    });
    plan.catch(() => planCache.delete(ref.sha256));
    planCache.set(ref.sha256, plan);
    return plan;
  };

  return {
    /**
     * Digests the source, publishes (or reuses) the tokenizer, then reuses the prepared corpus when one with
     * the same key is committed (this run's or, via the cache index, another run's) or stores a shard plan.
     */
    async planCorpus(input: PrepareCorpusInput): Promise<PlanCorpusResult> {
      const ctx = Context.current();
      const stop = heartbeatEvery(ctx, every);
      return atEdge(async () => {
        const store = openStore(input.artifacts ?? deps.defaultArtifactRoot);
        const source = await openCorpusSource(input.corpus.source, { signal: ctx.cancellationSignal });
        try {
          const format = input.corpus.format === 'auto' ? undefined : input.corpus.format;
          const layout = detectLayout(
            source.files.map((f) => f.name),
            format,
          );
          const config = { ...input.config, format: layout.format };
          const tokenizer = await publishTokenizer(store, input, source.digest, config, deps, ctx);
          const outputPrefix = stagePrefix(input.runId, STAGES.prepareCorpus);
          const cacheKey = computeCacheKey({
            stage: STAGES.prepareCorpus,
            inputs: [
              { name: 'corpus', manifestSha256: source.digest },
              { name: 'tokenizer', manifestSha256: tokenizer.contentDigest },
            ],
            // Fan-out width does not change the output, so it is not part of the key.
            config: { config: corpusPrepConfig(config), code: corpusCodeVersion() },
          });
          const forced = input.force.includes(STAGES.prepareCorpus);
          const existing = await reuseChecked(store, outputPrefix, cacheKey, STAGES.prepareCorpus, forced, {
            inputs: [
              { name: 'corpus', manifestSha256: source.digest },
              { name: 'tokenizer', manifestSha256: tokenizer.manifestSha256 },
            ],
            config,
          });
          if (existing) return { kind: 'reuse', tokenizer, result: existing };
          if (!forced) {
            const hit = await lookupCacheEntry(store, cacheKey);
            if (hit)
              return {
                kind: 'reuse',
                tokenizer,
                result: {
                  ...stageResultOf(store, store.rootUri, await readManifest(store, hit.prefix)),
                  reused: 'cache',
                },
              };
          }
          const shards = await planShards(layout, source.files, {
            shard_bytes: config.shard_bytes,
            signal: ctx.cancellationSignal,
          });
          const plan: CorpusPlan = {
            runId: input.runId,
            artifactRoot: store.rootUri,
            outputPrefix,
            cacheKey,
            corpus: input.corpus,
            format: layout.format,
            tokenizer,
            sourceDigest: source.digest,
            config,
            shards,
            force: forced,
          };
          const body = Buffer.from(JSON.stringify(plan));
          const sha256 = sha256Hex(body);
          await store.put(planKey(input.runId, sha256), body);
          return {
            kind: 'plan',
            tokenizer,
            plan: { artifactRoot: store.rootUri, runId: input.runId, sha256 },
            shards: shards.map(({ format: _sameForAll, ...spec }) => spec),
          };
        } finally {
          stop();
          await source.store?.close();
          await store.close();
        }
      });
    },

    /** Prepares one shard and commits it as its own artifact; a shard committed with the same key is reused. */
    async prepareCorpusShard({ plan: ref, shard: planned }: PrepareShardInput): Promise<ShardOutcome> {
      const ctx = Context.current();
      return atEdge(async () => {
        const store = openStore(ref.artifactRoot);
        const stop = heartbeatEvery(ctx, every);
        try {
          const plan = await loadPlan(store, ref);
          const shard = { ...planned, format: plan.format };
          const prefix = shardPrefix(plan, shard.index);
          const key = shardKey(plan, shard.index);
          const expected = {
            inputs: [{ name: 'corpus', manifestSha256: plan.sourceDigest }],
            config: { shard, ...plan.config },
          };
          if (await reuseChecked(store, prefix, key, STAGES.prepareCorpus, plan.force, expected))
            return { reused: true };
          const source = await openShardInput(plan, shard.file);
          try {
            const input = source.file;
            const tokenizer = await loadedTokenizer(store, plan);
            return await withTempDir(deps.workDir, 'shard-', async (dir) => {
              const result = await prepareShard(
                shard,
                input,
                tokenizer,
                corpusPrepConfig(plan.config),
                dir,
                (p) => ctx.heartbeat(p),
                ctx.cancellationSignal,
              );
              await writeFile(join(dir, SHARD_RESULT), JSON.stringify({ ...result, out_dir: '' }));
              const writer = await beginArtifact(
                store,
                prefix,
                {
                  stage: `${STAGES.prepareCorpus}-shard`,
                  runId: plan.runId,
                  cacheKey: key,
                  inputs: [{ name: 'corpus', uri: plan.corpus.source, manifestSha256: plan.sourceDigest }],
                  config: { shard, ...plan.config },
                },
                { overwrite: true },
              );
              await writer.addLocalDir(dir);
              await writer.commit({ ...flatStats(result) });
              return { reused: false };
            });
          } finally {
            await source.close();
          }
        } finally {
          stop();
          await store.close();
        }
      });
    },

    /** Cross-shard checks, corpus index, queries and qrels, merged stats; commits and indexes the stage artifact. */
    async finalizeCorpus({ plan: ref, reusedShards }: FinalizeCorpusInput): Promise<StageResult> {
      const ctx = Context.current();
      return atEdge(async () => {
        const store = openStore(ref.artifactRoot);
        const stop = heartbeatEvery(ctx, every);
        try {
          const plan = await loadPlan(store, ref);
          const source = await openCorpusSource(plan.corpus.source, { digest: false });
          try {
            return await withTempDir(deps.workDir, 'finalize-', async (dir) => {
              // Shards sit where they are in the stage folder, so corpus.json's relative shard dirs hold there too.
              const out = join(dir, 'out');
              const results: ShardResult[] = [];
              // Kept so the stage manifest can list the shards' files without reading each manifest again.
              const shardManifests: ReadManifestResult[] = [];
              for (const shard of plan.shards) {
                if (ctx.cancellationSignal.aborted) throw new AbortError('finalize cancelled');
                const local = join(out, shardFolder(shard.index));
                shardManifests.push(await fetchArtifact(store, shardPrefix(plan, shard.index), local));
                const result = JSON.parse(await readFile(join(local, SHARD_RESULT), 'utf8')) as ShardResult;
                results.push({ ...result, out_dir: local });
              }
              const corpus = await finalizeCorpus(results, out, ctx.cancellationSignal, {
                source: plan.corpus.source,
              });
              if (corpus.stats.docs === 0)
                throw new BadInputError(plan.corpus.source, undefined, 'no documents: the corpus is empty');
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
                    ctx.cancellationSignal,
                  )
                : undefined;
              const stats: Record<string, number> = {
                documents: corpus.stats.docs,
                passages: corpus.stats.passages,
                tokens: corpus.stats.tokens,
                pairs: corpus.stats.pairs,
                single_passage_docs: corpus.stats.single_passage_docs,
                shards: plan.shards.length,
                queries: queries?.queries ?? 0,
                qrels: Object.values(queries?.qrels ?? {}).reduce((a, b) => a + b, 0),
                dropped_qrels: queries?.dropped_qrels ?? 0,
                reused_shards: reusedShards,
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
                    {
                      name: 'tokenizer',
                      uri: plan.tokenizer.uri,
                      manifestSha256: plan.tokenizer.manifestSha256,
                    },
                  ],
                  config: plan.config,
                },
                { overwrite: true },
              );
              await rm(join(out, 'shards'), { recursive: true, force: true }); // already in the store
              await writer.addLocalDir(out);
              // The stage manifest covers the shard files too, so one verify checks the whole prepared corpus.
              for (const read of shardManifests) writer.recordArtifact(read);
              const committed = await writer.commit(stats);
              await recordCacheEntry(store, committed);
              return stageResultOf(store, plan.artifactRoot, committed);
            });
          } finally {
            await source.store?.close();
          }
        } finally {
          stop();
          await store.close();
        }
      });
    },
  };
}

/**
 * The one input file a shard reads. A local source is opened directly (listing a directory of thousands of
 * files for every shard would cost more than the shard); a dataset source through its manifest. A file that
 * is gone is bad input naming it.
 */
async function openShardInput(
  plan: CorpusPlan,
  name: string,
): Promise<{ file: InputFile; close(): Promise<void> }> {
  const source = plan.corpus.source;
  const gone = () =>
    new BadInputError(
      `${source.replace(/\/+$/, '')}/${name}`,
      undefined,
      'no longer exists: was it moved or deleted during the run?',
    );
  if (!/^s3:\/\//i.test(source)) {
    const base = source.startsWith('file://') ? fileURLToPath(source) : source;
    const isDir = (await stat(base).catch(() => undefined))?.isDirectory() ?? false;
    const path = isDir ? join(base, ...name.split('/')) : base;
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) throw gone();
    return { file: localFileAt(path, name, info.size), close: async () => {} };
  }
  const opened = await openCorpusSource(source, { digest: false });
  const file = opened.files.find((f) => f.name === name);
  if (!file) {
    await opened.store?.close();
    throw gone();
  }
  return { file, close: async () => opened.store?.close() };
}

/**
 * The committed artifact at `prefix` when it was made with `cacheKey`; undefined when there is none (or the
 * stage is forced); a StaleArtifactError naming both keys when it was made with another one.
 */
async function reuseChecked(
  store: ArtifactStore,
  prefix: string,
  cacheKey: string,
  stage: string,
  forced: boolean,
  expected: ExpectedArtifact,
): Promise<StageResult | undefined> {
  // `expected` is what this run would record: a mismatch then says what changed (inputs.corpus, config.x…).
  const check = await checkCommitted(store, prefix, cacheKey, { expected, forceStage: stage });
  if (check.state === 'absent' || forced) return undefined;
  if (check.state === 'mismatch') throw check.error;
  return { ...stageResultOf(store, store.rootUri, check.read), reused: 'run' };
}

/** Where a plan is stored: named by its digest, beside the stage folder's other files. */
function planKey(runId: string, sha256: string): string {
  return `${joinPrefix(stagePrefix(runId, STAGES.prepareCorpus), 'plans')}${sha256}.json`;
}

/** A shard's key: the stage's key plus which shard it is. */
function shardKey(plan: CorpusPlan, index: number): string {
  return computeCacheKey({
    stage: `${STAGES.prepareCorpus}-shard`,
    inputs: [],
    config: { stage: plan.cacheKey, shard: plan.shards[index] ?? index },
  });
}

/** A shard's folder inside the stage folder. */
function shardFolder(index: number): string {
  return `shards/${String(index).padStart(5, '0')}`;
}

function shardPrefix(plan: CorpusPlan, index: number): string {
  return joinPrefix(plan.outputPrefix, shardFolder(index));
}

function hasQueries(layout: CorpusLayout): boolean {
  return layout.queries.length > 0 || layout.format === 'squad';
}

/** Files of a model directory that make up its tokenizer (the rest, e.g. weights, is not copied). */
const TOKENIZER_FILES = ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json'];

/** The corpus-preparation keys that change the texts a tokenizer is trained on, or the vocabulary it learns. */
const TOKENIZER_KEYS = [
  'format',
  'normalization',
  'strip_niqqud',
  'lowercase',
  'vocab_size',
  'empty_text',
  'max_line_bytes',
];

function tokenizerConfig(config: PrepareCorpusInput['config']): Record<string, unknown> {
  const all = config as unknown as Record<string, unknown>;
  return Object.fromEntries(TOKENIZER_KEYS.filter((k) => all[k] !== undefined).map((k) => [k, all[k]]));
}

/**
 * The run's tokenizer: a copy of the given one (local model dir, tokenizer.json, or an artifact URI), or a
 * WordPiece vocabulary trained on the corpus (off the event loop). Reused when committed with the same key
 * in this run or, via the cache index, in another.
 */
async function publishTokenizer(
  store: ArtifactStore,
  input: PrepareCorpusInput,
  sourceDigest: string,
  config: PrepareCorpusInput['config'],
  deps: StageDeps,
  ctx: Context,
): Promise<StageResult> {
  const prefix = stagePrefix(input.runId, STAGES.tokenizer);
  const forced = input.force.includes(STAGES.tokenizer);
  const given = input.tokenizer.source;
  return withTempDir(deps.workDir, 'tokenizer-', async (dir) => {
    let key: string;
    if (given) {
      await copyTokenizer(given, dir);
      const files = await Promise.all(
        TOKENIZER_FILES.map(async (name) => {
          const body = await readFile(join(dir, name)).catch(() => undefined);
          return body ? { path: name, sha256: sha256Hex(body) } : undefined;
        }),
      );
      key = computeCacheKey({
        stage: STAGES.tokenizer,
        inputs: [{ name: 'tokenizer', manifestSha256: contentDigest(files.filter((f) => f !== undefined)) }],
        config: { given: true },
      });
    } else {
      key = computeCacheKey({
        stage: STAGES.tokenizer,
        inputs: [{ name: 'corpus', manifestSha256: sourceDigest }],
        config: { config: tokenizerConfig(config), code: corpusCodeVersion() },
      });
    }
    const existing = await reuseChecked(store, prefix, key, STAGES.tokenizer, forced, {
      inputs: given ? [] : [{ name: 'corpus', manifestSha256: sourceDigest }],
      config: given ? { source: given } : tokenizerConfig(config),
    });
    if (existing) return existing;
    if (!forced) {
      const hit = await lookupCacheEntry(store, key);
      if (hit)
        return {
          ...stageResultOf(store, store.rootUri, await readManifest(store, hit.prefix)),
          reused: 'cache',
        };
    }
    if (!given) {
      const source = await openCorpusSource(input.corpus.source, { digest: false });
      try {
        const layout = detectLayout(
          source.files.map((f) => f.name),
          config.format,
        );
        await trainWordPieceTokenizerOffThread({
          layout,
          files: source.files,
          config: corpusPrepConfig(config),
          outDir: dir,
          source: input.corpus.source,
          signal: ctx.cancellationSignal,
          onProgress: (p) => ctx.heartbeat(p),
        });
      } finally {
        await source.store?.close();
      }
    }
    const tokenizer = await loadTokenizer(dir);
    const writer = await beginArtifact(
      store,
      prefix,
      {
        stage: STAGES.tokenizer,
        runId: input.runId,
        cacheKey: key,
        inputs: given ? [] : [{ name: 'corpus', uri: input.corpus.source, manifestSha256: sourceDigest }],
        config: given ? { source: given } : tokenizerConfig(config),
      },
      { overwrite: true },
    );
    await writer.addLocalDir(dir);
    const committed = await writer.commit({ vocab_size: tokenizer.vocabSize });
    await recordCacheEntry(store, committed);
    return stageResultOf(store, store.rootUri, committed);
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

/** Read back by finalize (and by tests) through the manifest. */
export async function readShardResult(store: ArtifactStore, prefix: string): Promise<ShardResult> {
  return JSON.parse((await readArtifactFile(store, prefix, SHARD_RESULT)).toString('utf8')) as ShardResult;
}

function flatStats(result: ShardResult): Record<string, number> {
  const { length_histogram: _histogram, ...counts } = result.stats;
  return counts;
}
