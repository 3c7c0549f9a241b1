/**
 * finalizeCorpus: cross-shard checks and the corpus manifest. Memory: 8 bytes per document (the sorted
 * doc-id hashes); ids are only re-read when two hashes are equal, to confirm a duplicate exactly.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { BadInputError } from '../errors';
import { abortError, checkAborted } from './abort';
import { docIdHash, hashDocIdSet, readHashes, repeatedHashes, writeHashes } from './docids';
import { readLines } from './lines';
import { mergeStats } from './stats';
import type { CorpusManifest, DocIdSet, ShardResult } from './types';

export const DOC_ID_HASHES = 'doc_ids.hashes';
export const MANIFEST = 'corpus.json';

/** Options of finalizeCorpus. */
export interface FinalizeOptions {
  /** The corpus as the user named it (path or URI), for the "no documents" error; default: its files. */
  source?: string;
}

/**
 * Check the corpus has documents (BadInputError naming `opts.source` when it has none, or when every one was
 * skipped for an empty text) and that doc ids are unique across all shards (BadInputError at the later
 * occurrence's file:line), merge the stats, and write corpus.json and doc_ids.hashes (for loadDocIdSet)
 * into outDir, each under its final name only once complete. With a signal, it rejects with an AbortError
 * (checked between shards and chunks of ids) once aborted, having written neither.
 */
export async function finalizeCorpus(
  shards: readonly ShardResult[],
  outDir: string,
  signal?: AbortSignal,
  opts: FinalizeOptions = {},
): Promise<CorpusManifest> {
  checkAborted(signal, 'finalizing the corpus');
  const ordered = [...shards].sort((a, b) => a.shard.index - b.shard.index);
  ordered.forEach((r, i) => {
    if (r.shard.index !== i)
      throw new RangeError(`finalizeCorpus needs every shard of the plan; shard ${i} is missing`);
  });
  failWhenEmpty(ordered, opts.source);
  const firstLines = shardFirstLines(ordered);
  const hashes = await allHashes(ordered, signal);
  const repeated = repeatedHashes(hashes);
  if (repeated.size > 0) await failOnDuplicateIds(ordered, firstLines, repeated, signal);
  const manifest = buildManifest(ordered, firstLines, outDir);
  checkAborted(signal, 'finalizing the corpus');
  await mkdir(outDir, { recursive: true });
  const [hashFile, manifestFile] = [join(outDir, DOC_ID_HASHES), join(outDir, MANIFEST)];
  await writeHashes(`${hashFile}.partial`, hashes);
  await writeFile(`${manifestFile}.partial`, `${JSON.stringify(manifest, null, 1)}\n`);
  await rename(`${hashFile}.partial`, hashFile);
  await rename(`${manifestFile}.partial`, manifestFile); // last: corpus.json means finalized
  return manifest;
}

/** A corpus without a single passage is bad input: nothing to train on, nothing to index. */
function failWhenEmpty(ordered: readonly ShardResult[], source: string | undefined): void {
  const docs = ordered.reduce((n, r) => n + r.stats.docs, 0);
  if (ordered.some((r) => r.stats.passages > 0)) return;
  const name = source ?? ([...new Set(ordered.map((r) => r.shard.file))].join(', ') || 'corpus');
  const reason =
    docs === 0
      ? 'no documents: the corpus is empty (only blank lines, or no corpus lines at all)'
      : `no documents: all ${docs} documents were skipped for an empty text (empty_text: 'skip')`;
  throw new BadInputError(name, undefined, reason);
}

/** The doc ids of a finalized corpus, from its doc_ids.hashes (path of the file or of finalize's outDir). */
export async function loadDocIdSet(path: string): Promise<DocIdSet> {
  const file = (await stat(path)).isDirectory() ? join(path, DOC_ID_HASHES) : path;
  return hashDocIdSet(await readHashes(file));
}

/** Absolute line of each shard's first line: shards of one file are contiguous, in plan order. */
function shardFirstLines(ordered: readonly ShardResult[]): number[] {
  const next = new Map<string, number>();
  return ordered.map(({ shard, line_count }) => {
    const first = shard.first_line ?? next.get(shard.file) ?? 1;
    next.set(shard.file, first + line_count);
    return first;
  });
}

async function allHashes(ordered: readonly ShardResult[], signal?: AbortSignal): Promise<BigUint64Array> {
  const total = ordered.reduce((n, r) => n + r.stats.docs, 0);
  const all = new BigUint64Array(total);
  let at = 0;
  for (const r of ordered) {
    checkAborted(signal, 'finalizing the corpus');
    const h = await readHashes(join(r.out_dir, r.files.doc_id_hashes));
    all.set(h, at);
    at += h.length;
  }
  return all.sort();
}

/** Re-read the ids whose hashes repeat: equal ids are bad input, equal hashes of different ids are fine. */
async function failOnDuplicateIds(
  ordered: readonly ShardResult[],
  firstLines: readonly number[],
  repeated: ReadonlySet<bigint>,
  signal?: AbortSignal,
): Promise<void> {
  const seen = new Map<string, string>();
  for (const [i, r] of ordered.entries()) {
    const stream = createReadStream(join(r.out_dir, r.files.doc_ids));
    for await (const lines of readLines(stream, 1 << 30)) {
      if (signal?.aborted) throw abortError(signal, 'finalizing the corpus');
      for (const { text } of lines) {
        const tab = text.lastIndexOf('\t');
        const id = text.slice(0, tab);
        if (!repeated.has(docIdHash(id))) continue;
        const rel = Number(text.slice(tab + 1));
        const line = rel > 0 ? (firstLines[i] as number) + rel - 1 : undefined;
        const where = line === undefined ? r.shard.file : `${r.shard.file}:${line}`;
        const first = seen.get(id);
        if (first)
          throw new BadInputError(
            r.shard.file,
            line,
            `duplicate doc id ${JSON.stringify(id)} (first at ${first})`,
          );
        seen.set(id, where);
      }
    }
  }
}

function buildManifest(
  ordered: readonly ShardResult[],
  firstLines: readonly number[],
  outDir: string,
): CorpusManifest {
  let passageOffset = 0;
  const shards = ordered.map((r, i) => {
    const entry = {
      index: r.shard.index,
      file: r.shard.file,
      dir: relative(outDir, r.out_dir).split(sep).join('/'),
      first_line: firstLines[i] as number,
      passage_offset: passageOffset,
      passages: r.stats.passages,
      docs: r.stats.docs,
      files: r.files,
    };
    passageOffset += r.stats.passages;
    return entry;
  });
  return {
    format_version: 1,
    shards,
    stats: mergeStats(ordered.map((r) => r.stats)),
    doc_id_hashes: DOC_ID_HASHES,
  };
}
