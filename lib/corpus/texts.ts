/** Document texts of a whole corpus, e.g. to train a tokenizer on it. */
import { resolveCorpusPrepConfig } from './config';
import { fileByName } from './input';
import { asBadInput } from './lines';
import { shardDocuments } from './sources';
import type { CorpusLayout, CorpusPrepConfig, InputFile } from './types';

/**
 * Normalized texts of every document of the layout's corpus files, in file order; lines are validated as
 * in shards, empty texts are left out (prepareShard decides about them). With a signal, it rejects with an
 * AbortError (checked every batch of documents) once aborted.
 */
export function readCorpusTexts(
  layout: CorpusLayout,
  inputs: readonly InputFile[],
  config: Partial<CorpusPrepConfig>,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  return corpusTexts(layout, inputs, config, signal, { bytes: 0 });
}

/** readCorpusTexts, adding the (decompressed) bytes it has read to `read.bytes` as it goes. */
export async function* corpusTexts(
  layout: CorpusLayout,
  inputs: readonly InputFile[],
  config: Partial<CorpusPrepConfig>,
  signal: AbortSignal | undefined,
  read: { bytes: number },
): AsyncGenerator<string> {
  const cfg = resolveCorpusPrepConfig(config);
  for (const [index, name] of layout.corpus.entries()) {
    const shard = { index, format: layout.format, file: name };
    const counters = { bytes: 0, lines: 0, blankLines: 0 };
    const before = read.bytes;
    try {
      for await (const docs of shardDocuments(shard, fileByName(inputs, name), cfg, counters, signal)) {
        read.bytes = before + counters.bytes;
        for (const doc of docs) if (doc.text.trim().length > 0) yield doc.text;
      }
    } catch (err) {
      throw asBadInput(name, err); // whole file: relative lines are the file's lines
    }
  }
}
