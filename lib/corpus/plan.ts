/** Shard planning: byte ranges aligned to line starts for uncompressed line-based corpus files. */
import { checkAborted } from './abort';
import { DEFAULT_CORPUS_PREP_CONFIG } from './config';
import { fileByName, inputError, isGzip } from './input';
import type { CorpusLayout, InputFile, ShardSpec } from './types';

const PROBE_BYTES = 64 << 10;

export async function planShardRanges(
  layout: CorpusLayout,
  files: readonly InputFile[],
  opts: { shard_bytes?: number; signal?: AbortSignal },
): Promise<ShardSpec[]> {
  const { signal } = opts;
  checkAborted(signal, 'planning shards');
  const target = opts.shard_bytes ?? DEFAULT_CORPUS_PREP_CONFIG.shard_bytes;
  const shards: ShardSpec[] = [];
  for (const name of layout.corpus) {
    const file = fileByName(files, name);
    const splittable = layout.format !== 'squad' && !isGzip(name) && file.size > target;
    const cuts = splittable ? await lineAlignedCuts(file, target, signal) : [];
    const bounds = [0, ...cuts, file.size];
    for (let i = 0; i + 1 < bounds.length; i += 1) {
      const range = splittable ? { start: bounds[i] as number, end: bounds[i + 1] as number } : undefined;
      shards.push({ index: shards.length, format: layout.format, file: name, ...(range && { range }) });
    }
  }
  return shards;
}

/** Offsets just after the first '\n' at or past each multiple of `target` (deduplicated, < size). */
async function lineAlignedCuts(file: InputFile, target: number, signal?: AbortSignal): Promise<number[]> {
  const cuts: number[] = [];
  for (let t = target; t < file.size; t += target) {
    checkAborted(signal, 'planning shards');
    if ((cuts[cuts.length - 1] ?? 0) >= t) continue; // a long line already carried the last cut past t
    const cut = await nextLineStart(file, t - 1); // t is a line start iff byte t-1 is '\n'
    if (cut >= file.size) break;
    cuts.push(cut);
  }
  return cuts;
}

/** Offset after the first '\n' at or after `from` (file.size when none). */
async function nextLineStart(file: InputFile, from: number): Promise<number> {
  for (let pos = from; pos < file.size; pos += PROBE_BYTES) {
    const end = Math.min(file.size, pos + PROBE_BYTES);
    let offset = pos;
    try {
      for await (const chunk of (await file.open({ start: pos, end })) as AsyncIterable<Buffer>) {
        const nl = chunk.indexOf(0x0a);
        if (nl !== -1) return offset + nl + 1;
        offset += chunk.length;
      }
    } catch (err) {
      throw inputError(file, err);
    }
  }
  return file.size;
}
