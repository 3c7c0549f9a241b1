/** The Python (with HF tokenizers, transformers, numpy) that parity tests and the benchmark compare against. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** COTMAE_PYTHON, else <repoRoot>/.venv/bin/python, else /tmp/meas/venv/bin/python; undefined if none exists. */
export function findPython(repoRoot: string): string | undefined {
  const candidates = [
    process.env.COTMAE_PYTHON,
    join(repoRoot, '.venv/bin/python'),
    '/tmp/meas/venv/bin/python',
  ];
  return candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
}
