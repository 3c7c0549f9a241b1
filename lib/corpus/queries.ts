import type { CorpusLayout, CorpusPrepConfig, DocIdSet, InputFile, QueriesResult } from './types';

export async function prepareQueriesFiles(
  _layout: CorpusLayout,
  _inputs: readonly InputFile[],
  _known: DocIdSet,
  _config: Partial<CorpusPrepConfig>,
  _outDir: string,
): Promise<QueriesResult> {
  throw new Error('not implemented yet');
}
