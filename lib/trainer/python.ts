/**
 * Which Python runs the trainer, and with which environment. The trainer never sees the worker's whole
 * environment: only an allowlist of what Python, PyTorch/CUDA/NCCL and the trainer read, so the worker's
 * credentials (AWS_SECRET_ACCESS_KEY, TEMPORAL_API_KEY, HF_TOKEN, ...) stay out of a process that runs
 * third-party code and whose environment shows up in crash dumps and `/proc/<pid>/environ`.
 */
import { join } from 'node:path';
import { repoRoot } from '../settings';

type Env = Readonly<Record<string, string | undefined>>;

/** COTMAE_PYTHON (e.g. a CUDA box's system python with torch preinstalled), else the project's .venv. */
export function trainerPython(env: Env = process.env): string {
  return env.COTMAE_PYTHON?.trim() || join(repoRoot(), '.venv', 'bin', 'python');
}

/** Variables passed through by exact name. */
const ALLOWED_NAMES = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'XDG_CACHE_HOME',
  'VIRTUAL_ENV',
  'LD_LIBRARY_PATH',
  'OMP_NUM_THREADS',
  'TOKENIZERS_PARALLELISM',
  'TRANSFORMERS_OFFLINE',
  // torch.distributed rendezvous (torchrun sets them for its workers; a launcher may set them for us).
  'MASTER_ADDR',
  'MASTER_PORT',
  'WORLD_SIZE',
  'RANK',
  'LOCAL_RANK',
  'LOCAL_WORLD_SIZE',
]);

/** Variables passed through by prefix. */
const ALLOWED_PREFIXES = [
  'LC_',
  'PYTHON',
  'CUDA_',
  'CUBLAS_',
  'CUDNN_',
  'NVIDIA_',
  'NCCL_',
  'GLOO_',
  'TORCH_',
  'TORCHINDUCTOR_',
  'PYTORCH_',
  'TRITON_',
  'MKL_',
  'KMP_',
  'OPENBLAS_',
  'HF_',
  'COTMAE_TRAINER_',
];

/** Never passed even when allowed by prefix: interactive-only Python hooks. */
const DENIED_NAMES = new Set(['PYTHONSTARTUP', 'PYTHONINSPECT']);

/**
 * Defence in depth: a name that looks like a credential is dropped even under an allowed prefix
 * (HF_TOKEN, COTMAE_TRAINER_API_KEY, ...). The trainer runs offline and needs none.
 */
const SECRET_LIKE = /TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|AUTH/i;

/** True when `name` may be passed from the worker's environment to the trainer. */
export function isTrainerEnvName(name: string): boolean {
  if (DENIED_NAMES.has(name) || SECRET_LIKE.test(name)) return false;
  return ALLOWED_NAMES.has(name) || ALLOWED_PREFIXES.some((p) => name.startsWith(p));
}

/** The allowlisted part of `env` (no undefined values). */
export function allowedTrainerEnv(env: Env = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env))
    if (value !== undefined && isTrainerEnvName(name)) out[name] = value;
  return out;
}

/**
 * The trainer's complete environment: the allowlisted part of `env`, then `extras` (explicit values from
 * the caller, e.g. a GPU lease's CUDA_VISIBLE_DEVICES; they are not filtered, and an undefined value
 * removes the variable). The trainer package is importable even where it was not pip-installed (a CUDA box
 * that only has the checkout): trainer/ goes first on PYTHONPATH. Hub access is always switched off:
 * models come from local dirs. Pass the result as `env` to runTrainer (which does not add process.env).
 */
export function trainerEnv(
  env: Env = process.env,
  extras: Readonly<Record<string, string | undefined>> = {},
): Record<string, string> {
  const out = allowedTrainerEnv(env);
  for (const [name, value] of Object.entries(extras)) {
    if (value === undefined) delete out[name];
    else out[name] = value;
  }
  const trainerDir = join(repoRoot(), 'trainer');
  out.PYTHONPATH = out.PYTHONPATH ? `${trainerDir}:${out.PYTHONPATH}` : trainerDir;
  out.HF_HUB_OFFLINE = '1';
  out.TRANSFORMERS_OFFLINE = '1';
  return out;
}
