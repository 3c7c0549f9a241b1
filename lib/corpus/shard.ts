/** prepareShard: documents → passages, tokens, pairs and doc-id files of one shard. */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BadInputError, ConfigError } from '../errors';
import type { CorpusTokenizer } from '../tokenizer';
import type { HfEncoding } from '../tokenizer/hf';
import { abortError, checkAborted } from './abort';
import { resolveCorpusPrepConfig } from './config';
import { sentenceDocTokens, wholeDocTokens } from './doc-tokens';
import { countNewlines, RelativeLineError } from './lines';
import { contextPosition } from './pairs';
import { SHARD_FILES, ShardOutput } from './shard-output';
import { docError, type SourceCounters, type SourceDoc, shardDocuments } from './sources';
import { type DocTokens, type Passage, packSentences } from './split';
import { sentenceSpans, type TextSpan } from './text';
import type { CorpusPrepConfig, InputFile, ShardProgress, ShardResult, ShardSpec } from './types';

const PROGRESS_EVERY_MS = 500;

interface ShardContext {
  shard: ShardSpec;
  file: string;
  tok: CorpusTokenizer;
  cfg: CorpusPrepConfig;
  budget: number;
  out: ShardOutput;
  signal?: AbortSignal;
}

export async function runShard(
  shard: ShardSpec,
  input: InputFile,
  tokenizer: CorpusTokenizer,
  config: Partial<CorpusPrepConfig>,
  outDir: string,
  onProgress?: (p: ShardProgress) => void,
  signal?: AbortSignal,
): Promise<ShardResult> {
  const what = `shard ${shard.index} (${input.name})`;
  checkAborted(signal, what);
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
  const ctx: ShardContext = { shard, file: input.name, tok: tokenizer, cfg, budget, out, signal };
  const counters: SourceCounters = { bytes: 0, lines: 0, blankLines: 0 };
  try {
    await processDocuments(ctx, shardDocuments(shard, input, cfg, counters, signal), counters, onProgress);
    checkAborted(signal, what);
    await out.close();
  } catch (err) {
    await out.discard();
    if (signal?.aborted) throw abortError(signal, what);
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
  // Written last and atomically: a shard dir with stats.json is complete.
  const stats = join(outDir, SHARD_FILES.stats);
  await writeFile(`${stats}.partial`, `${JSON.stringify(result, null, 1)}\n`);
  await rename(`${stats}.partial`, stats);
  return result;
}

/** A batch of documents with their sentences, being encoded (whole, or sentence by sentence). */
interface EncodingBatch {
  docs: SourceDoc[];
  spans: TextSpan[][];
  /** One encoding per document (slice-safe tokenizers), else one per sentence. */
  whole: boolean;
  encodings: Promise<HfEncoding[]>;
}

/** Documents written between two returns to the event loop (see writeBatch). */
const YIELD_EVERY_DOCS = 32;

/** Batches read ahead of the one being written; their encodes run one after another. */
const BATCHES_AHEAD = 2;

/**
 * Encode batch k+1 (native threads) while batch k is split and written (JS thread). Encodes are chained,
 * not concurrent: concurrent ones would share the cores and all finish late, leaving nothing to overlap.
 */
async function processDocuments(
  ctx: ShardContext,
  batches: AsyncIterable<SourceDoc[]>,
  counters: SourceCounters,
  onProgress?: (p: ShardProgress) => void,
): Promise<void> {
  const report = progressReporter(ctx, counters, onProgress);
  const queue: EncodingBatch[] = [];
  let previous: Promise<unknown> = Promise.resolve();
  for await (const docs of batches) {
    checkAborted(ctx.signal, `shard ${ctx.shard.index}`);
    const batch = encodeBatch(ctx, docs, previous);
    previous = batch.encodings;
    queue.push(batch);
    if (queue.length > BATCHES_AHEAD) await writeBatch(ctx, queue.shift() as EncodingBatch);
    report(false);
  }
  for (const batch of queue) await writeBatch(ctx, batch);
  report(true);
}

/**
 * Slice-safe tokenizers encode each document whole: a document's tokens are its sentences' tokens one after
 * another (all cuts are at whitespace), and one long text costs the tokenizer less than many short ones.
 * Others encode sentence by sentence (their passages are re-encoded alone anyway).
 */
function encodeBatch(ctx: ShardContext, docs: SourceDoc[], after: Promise<unknown>): EncodingBatch {
  const spans = docs.map((d) => sentenceSpans(d.text));
  const whole = ctx.tok.sliceSafe;
  const texts = whole ? docs.map((d) => d.text) : sentenceTexts(docs, spans);
  const encode = () => ctx.tok.hf.encodeBatch(texts, { addSpecialTokens: false });
  const encodings = after.then(encode, encode);
  encodings.catch(() => undefined); // awaited in writeBatch; avoids an unhandled rejection if we fail first
  return { docs, spans, whole, encodings };
}

function sentenceTexts(docs: readonly SourceDoc[], spans: readonly TextSpan[][]): string[] {
  return docs.flatMap((d, i) => (spans[i] as TextSpan[]).map((s) => d.text.slice(s.start, s.end)));
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

async function writeBatch(ctx: ShardContext, batch: EncodingBatch): Promise<void> {
  const tokens = await batchTokens(ctx, batch);
  const split = batch.docs.map((doc, i) => splitDoc(ctx, doc, tokens[i] as DocTokens));
  if (!ctx.tok.sliceSafe) await reencode(ctx, batch.docs, split);
  for (const [i, doc] of batch.docs.entries()) {
    writeDoc(ctx, doc, tokens[i] as DocTokens, split[i] as Passage[]);
    // Let the event loop deliver a finished encode, so that the chained next one starts without waiting
    // for this whole batch to be written; wait for the output files when they are behind.
    if (i % YIELD_EVERY_DOCS === YIELD_EVERY_DOCS - 1) {
      await (ctx.out.ready() ?? new Promise((resolve) => setImmediate(resolve)));
      checkAborted(ctx.signal, `shard ${ctx.shard.index}`);
    }
  }
}

/**
 * Each document's tokens by sentence. A whole-document encoding that cannot be split at the sentence starts
 * (rare: see wholeDocTokens) is replaced by its sentences' encodings, all such documents in one batch.
 */
async function batchTokens(ctx: ShardContext, batch: EncodingBatch): Promise<DocTokens[]> {
  const encodings = await batch.encodings;
  const { docs, spans } = batch;
  if (!batch.whole) {
    let next = 0;
    return docs.map((doc, i) => {
      const ss = spans[i] as TextSpan[];
      next += ss.length;
      return sentenceDocTokens(doc.text, ss, encodings.slice(next - ss.length, next));
    });
  }
  const tokens = docs.map((doc, i) =>
    wholeDocTokens(doc.text, spans[i] as TextSpan[], encodings[i] as HfEncoding, ctx.budget),
  );
  const redo = docs.filter((_, i) => tokens[i] === undefined);
  if (redo.length === 0) return tokens as DocTokens[];
  const redoSpans = spans.filter((_, i) => tokens[i] === undefined);
  const sentenceEncodings = await ctx.tok.hf.encodeBatch(sentenceTexts(redo, redoSpans), {
    addSpecialTokens: false,
  });
  let next = 0;
  return tokens.map((t, i) => {
    if (t) return t;
    const ss = spans[i] as TextSpan[];
    next += ss.length;
    return sentenceDocTokens(
      (docs[i] as SourceDoc).text,
      ss,
      sentenceEncodings.slice(next - ss.length, next),
    );
  });
}

/** Passages of one document; none for an empty text when empty_text is 'skip'. */
function splitDoc(ctx: ShardContext, doc: SourceDoc, tokens: DocTokens): Passage[] {
  const { passages, truncations } = packSentences(tokens, ctx.budget);
  if (passages.length === 0 && ctx.cfg.empty_text === 'error') {
    const reason = doc.text.trim().length === 0 ? 'empty text' : 'text has no tokens';
    throw docError(ctx.file, doc, `${reason} (set empty_text: 'skip' to skip such documents)`);
  }
  ctx.out.stats.truncations += truncations;
  return passages;
}

/**
 * Tokenizers that are not slice-safe: a passage's ids are those of encoding its text alone (special
 * tokens included); one still over the limit is truncated (its suffix kept) and counted.
 */
async function reencode(ctx: ShardContext, docs: SourceDoc[], split: Passage[][]): Promise<void> {
  const passages = split.flat();
  const texts = split.flatMap((ps, i) => ps.map((p) => docs[i]?.text.slice(p.charStart, p.charEnd) ?? ''));
  const max = ctx.cfg.max_passage_tokens;
  const suffix = ctx.tok.suffixIds;
  (await ctx.tok.hf.encodeBatch(texts)).forEach((enc, i) => {
    const ids = enc.getIds();
    if (ids.length > max) ctx.out.stats.truncations += 1;
    (passages[i] as Passage).fullIds =
      ids.length <= max ? ids : [...ids.slice(0, max - suffix.length), ...suffix];
  });
}

const NO_IDS: readonly number[] = [];

function writeDoc(ctx: ShardContext, doc: SourceDoc, tokens: DocTokens, passages: Passage[]): void {
  const { out, cfg, tok } = ctx;
  out.addDoc(doc.id, doc.line);
  const n = passages.length;
  if (n === 0) {
    out.stats.empty_docs += 1;
    return;
  }
  const base = out.nextPassageIndex;
  const ids = passages[0]?.fullIds ? NO_IDS : tokens.ids();
  const docJson = out.docJson(doc.id, doc.title);
  for (const [k, p] of passages.entries()) {
    const text = doc.text.slice(p.charStart, p.charEnd);
    if (p.fullIds) out.addPassage(docJson, k, text, NO_IDS, p.fullIds, 0, p.fullIds.length, NO_IDS);
    else out.addPassage(docJson, k, text, tok.prefixIds, ids, p.tokStart, p.tokEnd, tok.suffixIds);
  }
  if (n === 1) out.stats.single_passage_docs += 1;
  for (let k = 0; k < n; k += 1) {
    const ctxPos = contextPosition(k, n, `${doc.id}#${k}`, cfg);
    if (ctxPos >= 0) out.addPair(base + k, base + ctxPos);
  }
}

/** A range shard's lines are numbered from its first line: count the lines before it only when needed. */
async function absoluteLine(shard: ShardSpec, input: InputFile, relLine: number): Promise<number> {
  if (shard.first_line !== undefined) return shard.first_line + relLine - 1;
  if (!shard.range || shard.range.start === 0) return relLine;
  return (await countNewlines(await input.open({ start: 0, end: shard.range.start }))) + relLine;
}
