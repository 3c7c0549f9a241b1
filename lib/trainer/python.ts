/** Which Python runs the trainer, and with which environment. */
import { join } from 'node:path';
import { repoRoot } from '../settings';

type Env = Readonly<Record<string, string | undefined>>;

/** COTMAE_PYTHON (e.g. a CUDA box's system python with torch preinstalled), else the project's .venv. */
export function trainerPython(env: Env = process.env): string {
  return env.COTMAE_PYTHON?.trim() || join(repoRoot(), '.venv', 'bin', 'python');
}

/**
 * The trainer package is importable even where it was not pip-installed (a CUDA box that only has the
 * checkout): trainer/ goes first on PYTHONPATH. Hub access is switched off: models come from local dirs.
 */
export function trainerEnv(env: Env = process.env): NodeJS.ProcessEnv {
  const trainerDir = join(repoRoot(), 'trainer');
  return {
    PYTHONPATH: env.PYTHONPATH ? `${trainerDir}:${env.PYTHONPATH}` : trainerDir,
    HF_HUB_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
  };
}
