/** Defaults and validation of CorpusPrepConfig: every problem is reported, each naming its key. */
import { ConfigError } from '../errors';
import { CORPUS_FORMATS, type CorpusPrepConfig } from './types';

/**
 * Largest vocab_size a trained tokenizer can have: the npm `tokenizers` trainer learns at most 30000 tokens
 * and the 5 special tokens come on top. (Kept here, free of native imports: workflow code validates configs.)
 */
export const MAX_TRAINED_VOCAB = 30005;

export const DEFAULT_CORPUS_PREP_CONFIG: Readonly<CorpusPrepConfig> = Object.freeze({
  max_passage_tokens: 128, // CoT-MAE v1 spans are ≤128 tokens
  pair_strategy: 'adjacent',
  pair_window: 2,
  single_passage_docs: 'skip',
  seed: 42,
  normalization: 'NFC',
  strip_niqqud: false,
  empty_text: 'error',
  max_line_bytes: 1 << 20,
  drop_unknown_qrels: false,
  vocab_size: 30000,
  lowercase: true,
  shard_bytes: 64 << 20,
  encode_batch_docs: 256,
});

type Rule = (v: unknown) => string | undefined;

const intIn =
  (lo: number, hi: number): Rule =>
  (v) =>
    Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi
      ? undefined
      : `must be an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`;

const oneOf =
  (values: readonly string[]): Rule =>
  (v) =>
    typeof v === 'string' && values.includes(v)
      ? undefined
      : `must be one of ${values.map((x) => `'${x}'`).join(', ')}, got ${JSON.stringify(v)}`;

const bool: Rule = (v) =>
  typeof v === 'boolean' ? undefined : `must be a boolean, got ${JSON.stringify(v)}`;

const RULES: Record<keyof CorpusPrepConfig, Rule> = {
  format: oneOf(CORPUS_FORMATS),
  max_passage_tokens: intIn(8, 65536),
  pair_strategy: oneOf(['adjacent', 'random']),
  pair_window: intIn(1, 1 << 20),
  single_passage_docs: oneOf(['skip', 'self']),
  seed: intIn(0, 0xffffffff),
  normalization: oneOf(['NFC', 'NFKC', 'none']),
  strip_niqqud: bool,
  empty_text: oneOf(['error', 'skip']),
  max_line_bytes: intIn(1024, 1 << 30),
  drop_unknown_qrels: bool,
  vocab_size: intIn(64, MAX_TRAINED_VOCAB),
  lowercase: bool,
  shard_bytes: intIn(1 << 16, 2 ** 40),
  encode_batch_docs: intIn(1, 1 << 16),
};

/** Every problem of a (partial) config, each as "key: reason". Unknown keys are problems. Empty = valid. */
export function validateCorpusPrepConfig(obj: unknown): string[] {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return ['(root): must be an object'];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(obj)) {
    const rule = RULES[key as keyof CorpusPrepConfig];
    if (!rule) problems.push(`${key}: unknown key`);
    else if (value !== undefined) {
      const why = rule(value);
      if (why) problems.push(`${key}: ${why}`);
    }
  }
  return problems;
}

/** Defaults filled in; throws ConfigError naming the first bad key (validate first to get them all). */
export function resolveCorpusPrepConfig(partial: Partial<CorpusPrepConfig> = {}): CorpusPrepConfig {
  const problems = validateCorpusPrepConfig(partial);
  if (problems.length > 0) {
    const first = problems[0] as string;
    const at = first.indexOf(': ');
    throw new ConfigError(first.slice(0, at), problems.join('; ').slice(at + 2));
  }
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  return { ...DEFAULT_CORPUS_PREP_CONFIG, ...defined };
}
