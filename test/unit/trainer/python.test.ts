/** The trainer's environment: an allowlist of the worker's, never its credentials. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../../lib/settings';
import { allowedTrainerEnv, isTrainerEnvName, trainerEnv, trainerPython } from '../../../lib/trainer/python';

describe('trainerEnv', () => {
  const worker = {
    PATH: '/usr/bin',
    HOME: '/home/w',
    LC_ALL: 'C.UTF-8',
    PYTHONPATH: '/extra',
    PYTHONSTARTUP: '/home/w/.pythonrc',
    CUDA_VISIBLE_DEVICES: '0,1,2,3',
    NCCL_DEBUG: 'INFO',
    PYTORCH_CUDA_ALLOC_CONF: 'expandable_segments:True',
    HF_HOME: '/cache/hf',
    HF_TOKEN: 'hf_secret',
    HUGGING_FACE_HUB_TOKEN: 'hf_secret',
    AWS_SECRET_ACCESS_KEY: 'aws_secret',
    AWS_ACCESS_KEY_ID: 'AKIA',
    TEMPORAL_API_KEY: 'temporal_secret',
    TEMPORAL_ADDRESS: 'temporal:7233',
    COTMAE_TRAINER_LOG: 'debug',
    COTMAE_TRAINER_API_KEY: 'nope',
    COTMAE_ARTIFACTS: 's3://bucket',
    MASTER_PORT: '29500',
    UNDEF: undefined,
  };

  it('keeps the allowlist, drops everything else and anything credential-like', () => {
    const env = trainerEnv(worker);
    const trainerDir = join(repoRoot(), 'trainer');
    assert.deepEqual(env, {
      PATH: '/usr/bin',
      HOME: '/home/w',
      LC_ALL: 'C.UTF-8',
      PYTHONPATH: `${trainerDir}:/extra`,
      CUDA_VISIBLE_DEVICES: '0,1,2,3',
      NCCL_DEBUG: 'INFO',
      PYTORCH_CUDA_ALLOC_CONF: 'expandable_segments:True',
      HF_HOME: '/cache/hf',
      HF_HUB_OFFLINE: '1',
      TRANSFORMERS_OFFLINE: '1',
      COTMAE_TRAINER_LOG: 'debug',
      MASTER_PORT: '29500',
    });
  });

  it('explicit extras win (a lease device), undefined removes, offline stays forced', () => {
    const env = trainerEnv(worker, { CUDA_VISIBLE_DEVICES: '2', NCCL_DEBUG: undefined, HF_HUB_OFFLINE: '0' });
    assert.equal(env.CUDA_VISIBLE_DEVICES, '2');
    assert.equal('NCCL_DEBUG' in env, false);
    assert.equal(env.HF_HUB_OFFLINE, '1');
    assert.equal(trainerEnv({}).PYTHONPATH, join(repoRoot(), 'trainer'));
  });

  it('name checks', () => {
    for (const ok of [
      'PATH',
      'LC_CTYPE',
      'TORCHINDUCTOR_CACHE_DIR',
      'TRITON_CACHE_DIR',
      'OMP_NUM_THREADS',
      'RANK',
    ])
      assert.ok(isTrainerEnvName(ok), ok);
    for (const no of [
      'AWS_REGION',
      'SSH_AUTH_SOCK',
      'HF_TOKEN',
      'PYTHONSTARTUP',
      'TEMPORAL_TLS_KEY',
      'GITHUB_TOKEN',
    ])
      assert.ok(!isTrainerEnvName(no), no);
    assert.deepEqual(allowedTrainerEnv({ PATH: '/bin', SECRET: 'x' }), { PATH: '/bin' });
  });

  it('trainerPython: COTMAE_PYTHON, else the project venv', () => {
    assert.equal(trainerPython({ COTMAE_PYTHON: ' /usr/bin/python3 ' }), '/usr/bin/python3');
    assert.equal(trainerPython({}), join(repoRoot(), '.venv', 'bin', 'python'));
  });
});
