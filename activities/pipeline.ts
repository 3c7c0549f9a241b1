import { checkArtifactRoot } from '../lib/artifacts';
import { resolvePipelineInput } from '../lib/pipeline/config';
import type { PipelineInput, ResolvedPipelineInput } from '../lib/pipeline/types';
import { atEdge } from './failures';
import type { StageDeps } from './support';

export interface ValidatePipelineInputInput {
  input: PipelineInput;
  workflowId: string;
}

/** Control-plane activities of the pipeline workflow itself. */
export function createPipelineActivities(deps: Pick<StageDeps, 'defaultArtifactRoot'>) {
  return {
    /**
     * Validates the user's JSON once, reporting every problem (trainer configs included, against the
     * trainer's schema), and checks the artifact root is usable (exists or can be created, writable, not a
     * pseudo file system) with bounded calls; bad input is not retried.
     */
    async validatePipelineInput({
      input,
      workflowId,
    }: ValidatePipelineInputInput): Promise<ResolvedPipelineInput> {
      return atEdge(async () => {
        const resolved = resolvePipelineInput(input, workflowId);
        const artifacts = await checkArtifactRoot(
          resolved.artifacts ?? deps.defaultArtifactRoot,
          'artifacts',
        );
        return { ...resolved, artifacts };
      });
    },
  };
}
