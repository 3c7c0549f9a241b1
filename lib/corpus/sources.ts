/** Document sources of a shard: batches of normalized documents from line-based or SQuAD inputs. */
import { BadInputError } from '../errors';
import { abortError, checkAborted } from './abort';
import { inputError, openDecoded } from './input';
import { type Line, RelativeLineError, readLines } from './lines';
import { type DocRecord, parseDocLine } from './records';
import { readSquadParagraphs } from './squad';
import { normalizeText } from './text';
import type { CorpusPrepConfig, InputFile, ShardSpec } from './types';

/** A document ready to tokenize; `path` is set for inputs without lines (SQuAD JSON). */
export interface SourceDoc extends DocRecord {
  path?: string;
}

/** Running counters a source updates as it reads. */
export interface SourceCounters {
  bytes: number;
  /** Last line number read (relative to the shard start). */
  lines: number;
  blankLines: number;
}

/** Bad input about one document, at its line (or JSON path). */
export function docError(file: string, doc: SourceDoc, reason: string): Error {
  return doc.path
    ? new BadInputError(file, undefined, `${doc.path}: ${reason}`)
    : new RelativeLineError(doc.line, reason);
}

/**
 * Documents of the shard in batches of `cfg.encode_batch_docs`, texts normalized (possibly empty). Read
 * errors are named (inputError); with a signal, it rejects with an AbortError between chunks once aborted.
 */
export async function* shardDocuments(
  shard: ShardSpec,
  input: InputFile,
  cfg: CorpusPrepConfig,
  counters: SourceCounters,
  signal?: AbortSignal,
): AsyncGenerator<SourceDoc[]> {
  const chunks =
    shard.format === 'squad' ? squadDocs(input, signal) : lineDocs(shard, input, cfg, counters, signal);
  let batch: SourceDoc[] = [];
  for await (const docs of chunks) {
    for (const doc of docs) {
      doc.text = normalizeText(doc.text, cfg);
      doc.title = normalizeText(doc.title, cfg);
      batch.push(doc);
      if (batch.length >= cfg.encode_batch_docs) {
        checkAborted(signal, `reading ${input.name}`);
        yield batch;
        batch = [];
      }
    }
  }
  checkAborted(signal, `reading ${input.name}`);
  if (batch.length > 0) yield batch;
}

/** Documents of each chunk of lines (one await per chunk, not per document). */
async function* lineDocs(
  shard: ShardSpec,
  input: InputFile,
  cfg: CorpusPrepConfig,
  counters: SourceCounters,
  signal?: AbortSignal,
): AsyncGenerator<SourceDoc[]> {
  const bytes = await openDecoded(input, shard.range, signal);
  try {
    for await (const lines of readLines(bytes, cfg.max_line_bytes, counters)) {
      checkAborted(signal, `reading ${input.name}`);
      const docs: SourceDoc[] = [];
      for (const line of lines) {
        counters.lines = line.no;
        if (isBlank(line)) counters.blankLines += 1;
        else docs.push(parseDocLine(shard.format, line));
      }
      yield docs;
    }
  } catch (err) {
    if (signal?.aborted) throw abortError(signal, `reading ${input.name}`);
    // Line numbers of a range are relative; only whole files (all gzipped ones) say "after line N".
    throw inputError(input, err, shard.range && shard.range.start > 0 ? undefined : counters.lines);
  }
}

function isBlank(line: Line): boolean {
  return line.text.trim().length === 0;
}

async function* squadDocs(input: InputFile, signal?: AbortSignal): AsyncGenerator<SourceDoc[]> {
  for await (const p of readSquadParagraphs(input, signal)) {
    yield [{ id: p.docId, title: p.title, text: p.context, line: 0, path: p.path }];
  }
}
