/** Activities served on the GPU queue. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { StageDeps } from './support';

export interface GpuDevice {
  index: number;
  name: string;
  memoryMiB: number;
}

/** Lists the NVIDIA GPUs `nvidia-smi` reports; empty on a machine without one (or without the driver). */
export async function listGpus(): Promise<GpuDevice[]> {
  try {
    const { stdout } = await promisify(execFile)(
      'nvidia-smi',
      ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits'],
      { timeout: 10_000 },
    );
    return stdout
      .trim()
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [index, name, memory] = line.split(',').map((x) => x.trim());
        return { index: Number(index), name: name ?? '', memoryMiB: Number(memory) };
      });
  } catch {
    return [];
  }
}

export function createGpuActivities(_deps: StageDeps) {
  return {
    /** What this GPU worker has: lets an operator (or a workflow) check the queue is served by the right box. */
    async describeGpuWorker(): Promise<{ host: string; gpus: GpuDevice[] }> {
      return { host: (await import('node:os')).hostname(), gpus: await listGpus() };
    },
  };
}
