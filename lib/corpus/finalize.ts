import type { CorpusManifest, DocIdSet, ShardResult } from './types';

/** Check doc ids are unique across all shards, merge stats, write corpus.json and doc_ids.hashes to outDir. */
export async function finalizeCorpus(
  _shards: readonly ShardResult[],
  _outDir: string,
): Promise<CorpusManifest> {
  throw new Error('not implemented yet');
}

/** The doc ids of a finalized corpus (from its doc_ids.hashes file) as a DocIdSet. */
export async function loadDocIdSet(_hashFile: string): Promise<DocIdSet> {
  throw new Error('not implemented yet');
}
