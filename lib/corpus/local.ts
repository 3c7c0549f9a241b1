import type { CorpusManifest, CorpusPrepConfig, QueriesResult, ShardProgress } from './types';

export interface LocalPrepOptions {
  /** Model dir or tokenizer.json; absent = train a WordPiece tokenizer on the corpus into outDir/tokenizer. */
  tokenizer?: string;
  onProgress?: (p: ShardProgress) => void;
}

export interface LocalPrepResult {
  manifest: CorpusManifest;
  queries: QueriesResult | undefined;
  tokenizer: string;
}

/** Whole preparation in-process: plan → shards (outDir/shards/NNNNN) → finalize → queries. */
export async function prepareCorpusLocal(
  _sourceDir: string,
  _outDir: string,
  _config: Partial<CorpusPrepConfig>,
  _opts: LocalPrepOptions = {},
): Promise<LocalPrepResult> {
  throw new Error('not implemented yet');
}
