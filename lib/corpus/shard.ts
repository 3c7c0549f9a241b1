/** prepareShard: documents → passages, tokens, pairs and doc-id files of one shard. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BadInputError, ConfigError } from '../errors';
import type { CorpusTokenizer } from '../tokenizer';
import type { HfEncoding } from '../tokenizer/hf';
import { resolveCorpusPrepConfig } from './config';
import { countNewlines, RelativeLineError } from './lines';
import { contextPosition } from './pairs';
import { SHARD_FILES, ShardOutput } from './shard-output';
import { docError, type SourceCounters, type SourceDoc, shardDocuments } from './sources';
import { type PassageSlice, splitDocument } from './split';
import type { CorpusPrepConfig, InputFile, ShardProgress, ShardResult, ShardSpec } from './types';

const PROGRESS_EVERY_MS = 500;

interface ShardContext {
  shard: ShardSpec;
  file: string;
  tok: CorpusTokenizer;
  cfg: CorpusPrepConfig;
  budget: number;
  out: ShardOutput;
}

export async function runShard(
  shard: ShardSpec,
  input: InputFile,
  tokenizer: CorpusTokenizer,
  config: Partial<CorpusPrepConfig>,
  outDir: string,
  onProgress?: (p: ShardProgress) => void,
): Promise<ShardResult> {
  const cfg = resolveCorpusPrepConfig(config);
  const budget = cfg.max_passage_tokens - tokenizer.specialTokens;
  if (budget < 1) {
    throw new ConfigError(
      'max_passage_tokens',
      `must exceed the tokenizer's ${tokenizer.specialTokens} special tokens`,
    );
  }
  await mkdir(outDir, { recursive: true });
  const out = await ShardOutput.open(outDir, tokenizer.vocabSize);
  const ctx: ShardContext = { shard, file: input.name, tok: tokenizer, cfg, budget, out };
  const counters: SourceCounters = { bytes: 0, lines: 0, blankLines: 0 };
  try {
    await processDocuments(ctx, shardDocuments(shard, input, cfg, counters), counters, onProgress);
    await out.close();
  } catch (err) {
    await out.discard();
    if (err instanceof RelativeLineError) {
      throw new BadInputError(input.name, await absoluteLine(shard, input, err.relLine), err.reason);
    }
    throw err;
  }
  out.stats.blank_lines = counters.blankLines;
  const result: ShardResult = {
    shard,
    out_dir: outDir,
    files: { ...SHARD_FILES },
    line_count: counters.lines,
    stats: out.stats,
  };
  await writeFile(join(outDir, SHARD_FILES.stats), `${JSON.stringify(result, null, 1)}\n`);
  return result;
}

/** Encode batch k+1 (native threads) while batch k is split and written (JS thread). */
async function processDocuments(
  ctx: ShardContext,
  batches: AsyncIterable<SourceDoc[]>,
  counters: SourceCounters,
  onProgress?: (p: ShardProgress) => void,
): Promise<void> {
  const report = progressReporter(ctx, counters, onProgress);
  let pending: { docs: SourceDoc[]; encodings: Promise<HfEncoding[]> } | undefined;
  for await (const docs of batches) {
    const encodings = ctx.tok.hf.encodeBatch(
      docs.map((d) => d.text),
      { addSpecialTokens: false },
    );
    encodings.catch(() => undefined); // awaited below; avoids an unhandled rejection if we fail first
    if (pending) await writeBatch(ctx, pending.docs, await pending.encodings);
    pending = { docs, encodings };
    report(false);
  }
  if (pending) await writeBatch(ctx, pending.docs, await pending.encodings);
  report(true);
}

function progressReporter(
  ctx: ShardContext,
  counters: SourceCounters,
  onProgress?: (p: ShardProgress) => void,
) {
  let last = Date.now();
  return (final: boolean) => {
    if (!onProgress || (!final && Date.now() - last < PROGRESS_EVERY_MS)) return;
    last = Date.now();
    const { docs, passages } = ctx.out.stats;
    onProgress({ shard: ctx.shard.index, bytes_read: counters.bytes, lines: counters.lines, docs, passages });
  };
}

async function writeBatch(ctx: ShardContext, docs: SourceDoc[], encodings: HfEncoding[]): Promise<void> {
  const split = docs.map((doc, i) => splitDoc(ctx, doc, encodings[i] as HfEncoding));
  const ids = ctx.tok.sliceSafe ? slicedIds(ctx, split, encodings) : await reencodedIds(ctx, docs, split);
  let next = 0;
  for (const [i, doc] of docs.entries()) {
    const slices = split[i] as PassageSlice[];
    await writeDoc(ctx, doc, slices, ids.slice(next, next + slices.length));
    next += slices.length;
  }
}

/** Passages of one document; none for an empty text when empty_text is 'skip'. */
function splitDoc(ctx: ShardContext, doc: SourceDoc, enc: HfEncoding): PassageSlice[] {
  const { slices, truncations } = splitDocument(doc.text, enc, ctx.budget);
  if (slices.length === 0 && ctx.cfg.empty_text === 'error') {
    const reason = doc.text.trim().length === 0 ? 'empty text' : 'text has no tokens';
    throw docError(ctx.file, doc, `${reason} (set empty_text: 'skip' to skip such documents)`);
  }
  ctx.out.stats.truncations += truncations;
  return slices;
}

/** Slice-safe tokenizers: a passage's ids are a slice of its document's encoding plus the specials. */
function slicedIds(ctx: ShardContext, split: PassageSlice[][], encodings: HfEncoding[]): number[][] {
  const { prefixIds, suffixIds } = ctx.tok;
  return split.flatMap((slices, i) => {
    const docIds = (encodings[i] as HfEncoding).getIds();
    return slices.map((s) => [...prefixIds, ...docIds.slice(s.tokenStart, s.tokenEnd), ...suffixIds]);
  });
}

/** Other tokenizers: encode each passage alone; one still over the limit is truncated and counted. */
async function reencodedIds(
  ctx: ShardContext,
  docs: SourceDoc[],
  split: PassageSlice[][],
): Promise<number[][]> {
  const texts = split.flatMap((slices, i) =>
    slices.map((s) => docs[i]?.text.slice(s.charStart, s.charEnd) ?? ''),
  );
  const max = ctx.cfg.max_passage_tokens;
  return (await ctx.tok.hf.encodeBatch(texts)).map((enc) => {
    const ids = enc.getIds();
    if (ids.length <= max) return ids;
    ctx.out.stats.truncations += 1;
    return [...ids.slice(0, max - ctx.tok.suffixIds.length), ...ctx.tok.suffixIds];
  });
}

async function writeDoc(
  ctx: ShardContext,
  doc: SourceDoc,
  slices: PassageSlice[],
  ids: number[][],
): Promise<void> {
  const { out, cfg } = ctx;
  await out.addDoc(doc.id, doc.line);
  const base = out.nextPassageIndex;
  const n = slices.length;
  for (const [k, s] of slices.entries()) {
    const text = doc.text.slice(s.charStart, s.charEnd);
    await out.addPassage({
      id: `${doc.id}#${k}`,
      doc_id: doc.id,
      position: k,
      title: doc.title,
      text,
      ids: ids[k] as number[],
    });
  }
  if (n === 0) out.stats.empty_docs += 1;
  if (n === 1) out.stats.single_passage_docs += 1;
  for (let k = 0; k < n; k += 1) {
    const ctxPos = contextPosition(k, n, `${doc.id}#${k}`, cfg);
    if (ctxPos >= 0) await out.addPair(base + k, base + ctxPos);
  }
}

/** A range shard's lines are numbered from its first line: count the lines before it only when needed. */
async function absoluteLine(shard: ShardSpec, input: InputFile, relLine: number): Promise<number> {
  if (shard.first_line !== undefined) return shard.first_line + relLine - 1;
  if (!shard.range || shard.range.start === 0) return relLine;
  return (await countNewlines(await input.open({ start: 0, end: shard.range.start }))) + relLine;
}
