import { resolvePipelineInput } from '../lib/pipeline/config';
import type { PipelineInput, ResolvedPipelineInput } from '../lib/pipeline/types';
import { atEdge } from './failures';

export interface ValidatePipelineInputInput {
  input: PipelineInput;
  workflowId: string;
}

/** Control-plane activities of the pipeline workflow itself. */
export function createPipelineActivities() {
  return {
    /** Validates the user's JSON once, reporting every problem; bad input is not retried. */
    async validatePipelineInput({
      input,
      workflowId,
    }: ValidatePipelineInputInput): Promise<ResolvedPipelineInput> {
      return atEdge(async () => resolvePipelineInput(input, workflowId));
    },
  };
}
