import type { PlanShardsOptions } from './index';
import type { CorpusLayout, InputFile, ShardSpec } from './types';

export async function planShardRanges(
  _layout: CorpusLayout,
  _files: readonly InputFile[],
  _opts: PlanShardsOptions,
): Promise<ShardSpec[]> {
  throw new Error('not implemented yet');
}
