/**
 * prepareQueries: normalized queries (queries.jsonl) and qrels (qrels/<split>.tsv) of a corpus, checked
 * against the known query and doc ids. Query ids are held in memory (queries are few next to documents).
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BadInputError } from '../errors';
import { abortError, checkAborted } from './abort';
import { resolveCorpusPrepConfig } from './config';
import { fileByName, inputError, openDecoded } from './input';
import { asBadInput, readLines } from './lines';
import { parseQrelLine, parseQueryLine, type QrelRecord } from './records';
import { readSquadParagraphs } from './squad';
import { normalizeText } from './text';
import type { CorpusLayout, CorpusPrepConfig, DocIdSet, InputFile, QueriesResult } from './types';
import { BufferedFile } from './writers';

export const QUERIES_FILE = 'queries.jsonl';
const QRELS_HEADER = 'query-id\tcorpus-id\tscore\n';

interface QrelsOutput {
  split: string;
  /** Relative to outDir; written as `<name>.partial` until every input was read. */
  name: string;
  file: BufferedFile;
  pairs: Set<string>;
}

/** Suffix of an output file being written; renamed to its final name once all of them are complete. */
const PARTIAL = '.partial';

interface QueryContext {
  cfg: CorpusPrepConfig;
  known: DocIdSet;
  outDir: string;
  queries: BufferedFile;
  queryIds: Set<string>;
  qrels: Map<string, QrelsOutput>;
  result: QueriesResult;
  signal?: AbortSignal;
}

export async function prepareQueriesFiles(
  layout: CorpusLayout,
  inputs: readonly InputFile[],
  known: DocIdSet,
  config: Partial<CorpusPrepConfig>,
  outDir: string,
  signal?: AbortSignal,
): Promise<QueriesResult> {
  checkAborted(signal, 'preparing queries');
  const cfg = resolveCorpusPrepConfig(config);
  await mkdir(join(outDir, 'qrels'), { recursive: true });
  const ctx: QueryContext = {
    cfg,
    known,
    outDir,
    signal,
    queries: await BufferedFile.create(join(outDir, QUERIES_FILE + PARTIAL)),
    queryIds: new Set(),
    qrels: new Map(),
    result: {
      queries: 0,
      qrels: {},
      dropped_qrels: 0,
      unanswerable: 0,
      files: { queries: QUERIES_FILE, qrels: {} },
    },
  };
  const qrels = () => [...new Set(ctx.qrels.values())];
  const names = () => [QUERIES_FILE, ...qrels().map((q) => q.name)];
  try {
    if (layout.format === 'squad') await readSquadQueries(ctx, layout, inputs);
    else await readQueryAndQrelFiles(ctx, layout, inputs);
    checkAborted(signal, 'preparing queries');
    await Promise.all([ctx.queries.close(), ...qrels().map((q) => q.file.close())]);
  } catch (err) {
    await Promise.all([ctx.queries.abort(), ...qrels().map((q) => q.file.abort())]);
    await Promise.all(names().map((n) => rm(join(outDir, n + PARTIAL), { force: true })));
    throw signal?.aborted ? abortError(signal, 'preparing queries') : err;
  }
  for (const name of names()) await rename(join(outDir, name + PARTIAL), join(outDir, name));
  return ctx.result;
}

async function readQueryAndQrelFiles(ctx: QueryContext, layout: CorpusLayout, inputs: readonly InputFile[]) {
  for (const { file } of layout.queries) {
    await forEachLine(ctx, fileByName(inputs, file), async (line) => {
      const q = parseQueryLine(layout.format, line);
      if (ctx.queryIds.has(q.id))
        throw new BadInputError(file, line.no, `duplicate query id ${JSON.stringify(q.id)}`);
      addQuery(ctx, q.id, q.text);
    });
  }
  for (const { file, split } of layout.qrels) {
    await forEachLine(ctx, fileByName(inputs, file), async (line) => {
      const qrel = parseQrelLine(layout.format, line);
      if (qrel) await addQrel(ctx, split, qrel, (reason) => new BadInputError(file, line.no, reason));
    });
  }
}

async function readSquadQueries(ctx: QueryContext, layout: CorpusLayout, inputs: readonly InputFile[]) {
  for (const file of layout.corpus) {
    const split = file.replace(/\.json(\.gz)?$/, '').replace(/^.*\//, '');
    for await (const p of readSquadParagraphs(fileByName(inputs, file), ctx.signal)) {
      for (const [i, q] of p.questions.entries()) {
        const fail = (reason: string) => new BadInputError(file, undefined, `${p.path}.qas[${i}]: ${reason}`);
        if (ctx.queryIds.has(q.id)) throw fail(`duplicate query id ${JSON.stringify(q.id)}`);
        addQuery(ctx, q.id, q.question);
        if (q.impossible) ctx.result.unanswerable += 1;
        await addQrel(ctx, split, { queryId: q.id, docId: p.docId, score: 1 }, fail);
      }
      await outputsReady(ctx);
    }
  }
}

function addQuery(ctx: QueryContext, id: string, text: string): void {
  ctx.queryIds.add(id);
  ctx.queries.writeString(`${JSON.stringify({ id, text: normalizeText(text, ctx.cfg) })}\n`);
  ctx.result.queries += 1;
}

async function addQrel(
  ctx: QueryContext,
  split: string,
  q: QrelRecord,
  fail: (reason: string) => BadInputError,
): Promise<void> {
  const unknown = !ctx.queryIds.has(q.queryId)
    ? `qrel names unknown query id ${JSON.stringify(q.queryId)}`
    : !ctx.known.has(q.docId)
      ? `qrel names unknown doc id ${JSON.stringify(q.docId)}`
      : undefined;
  if (unknown && !ctx.cfg.drop_unknown_qrels)
    throw fail(`${unknown} (set drop_unknown_qrels to drop such lines)`);
  if (unknown) {
    ctx.result.dropped_qrels += 1;
    return;
  }
  const out = ctx.qrels.get(split) ?? (await qrelsOutput(ctx, split));
  const key = `${q.queryId}\t${q.docId}`;
  if (out.pairs.has(key))
    throw fail(`duplicate qrel for query ${JSON.stringify(q.queryId)} and doc ${JSON.stringify(q.docId)}`);
  out.pairs.add(key);
  out.file.writeString(`${key}\t${q.score}\n`);
  ctx.result.qrels[out.split] = (ctx.result.qrels[out.split] ?? 0) + 1;
}

/**
 * The qrels file of a split (created with its header on first use); split names are made file-safe, and
 * splits with the same safe name share a file. `ctx.qrels` is keyed by the split as given.
 */
async function qrelsOutput(ctx: QueryContext, split: string): Promise<QrelsOutput> {
  const safe = split.replace(/[^\w.-]+/g, '_');
  let out = [...ctx.qrels.values()].find((o) => o.split === safe);
  if (!out) {
    const name = `qrels/${safe}.tsv`;
    const file = await BufferedFile.create(join(ctx.outDir, name + PARTIAL));
    out = { split: safe, name, file, pairs: new Set() };
    out.file.writeString(QRELS_HEADER);
    ctx.result.files.qrels[safe] = name;
  }
  ctx.qrels.set(split, out);
  return out;
}

/** Let the output files catch up (their writes are buffered). */
async function outputsReady(ctx: QueryContext): Promise<void> {
  await ctx.queries.ready();
  for (const q of new Set(ctx.qrels.values())) await q.file.ready();
}

/**
 * Non-blank lines of a whole file; parse errors become BadInputErrors at the file's line, read errors are
 * named (inputError).
 */
async function forEachLine(
  ctx: QueryContext,
  input: InputFile,
  fn: (line: { no: number; text: string }) => Promise<void>,
): Promise<void> {
  let last = 0;
  try {
    for await (const lines of readLines(
      await openDecoded(input, undefined, ctx.signal),
      ctx.cfg.max_line_bytes,
    )) {
      checkAborted(ctx.signal, 'preparing queries');
      for (const line of lines) {
        last = line.no;
        if (line.text.trim().length > 0) await fn(line);
      }
      await outputsReady(ctx);
    }
  } catch (err) {
    throw asBadInput(input.name, inputError(input, err, last));
  }
}
