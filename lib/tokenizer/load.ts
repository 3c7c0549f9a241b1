/** Loading an HF tokenizer.json and deciding how passages can be tokenized with it. */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors';
import { hf as binding, type HfTokenizer } from './hf';

/** A loaded tokenizer plus the facts passage splitting needs. */
export interface CorpusTokenizer {
  readonly hf: HfTokenizer;
  /** Path of the tokenizer.json it was loaded from. */
  readonly file: string;
  /** Vocabulary size, added tokens included: decides the token file's dtype. */
  readonly vocabSize: number;
  /** Tokens the post-processor adds to one sequence ([CLS] and [SEP] for BERT: 2). */
  readonly specialTokens: number;
  /** Ids the post-processor puts before / after a sequence ([CLS] / [SEP] for BERT). */
  readonly prefixIds: readonly number[];
  readonly suffixIds: readonly number[];
  /**
   * True when encoding a document once and slicing its tokens at word boundaries gives exactly the ids of
   * encoding each slice alone (WordPiece with char-local normalizer and pre-tokenizer). Otherwise passages
   * are re-encoded one by one.
   */
  readonly sliceSafe: boolean;
}

/** Load `dirOrFile` (a model directory holding tokenizer.json, or the file itself). Never reads a hub. */
export async function loadTokenizer(dirOrFile: string): Promise<CorpusTokenizer> {
  const file = tokenizerJsonPath(dirOrFile);
  let spec: TokenizerJson;
  let hf: HfTokenizer;
  try {
    const text = readFileSync(file, 'utf8');
    hf = binding.Tokenizer.fromString(text);
    spec = pipelineSpec(text);
  } catch (err) {
    throw new ConfigError('tokenizer', `cannot load ${file}: ${(err as Error).message}`);
  }
  hf.disableTruncation(); // passages are cut by us, never silently by the tokenizer
  hf.disablePadding();
  const affixes = await specialAffixes(hf);
  return {
    hf,
    file,
    vocabSize: hf.getVocabSize(true),
    specialTokens: affixes.specialTokens,
    prefixIds: affixes.prefixIds,
    suffixIds: affixes.suffixIds,
    sliceSafe: affixes.found && isSliceSafe(spec),
  };
}

/** Where the post-processor puts its special tokens, from encoding a probe with and without them. */
async function specialAffixes(hf: HfTokenizer) {
  const probe = 'a';
  const inner = (await hf.encode(probe, null, { addSpecialTokens: false })).getIds();
  const full = (await hf.encode(probe)).getIds();
  const at = full.findIndex((_, i) => inner.every((id, j) => full[i + j] === id));
  const found = inner.length > 0 && at !== -1;
  return {
    found,
    specialTokens: full.length - inner.length,
    prefixIds: found ? full.slice(0, at) : [],
    suffixIds: found ? full.slice(at + inner.length) : [],
  };
}

function tokenizerJsonPath(dirOrFile: string): string {
  try {
    return statSync(dirOrFile).isDirectory() ? join(dirOrFile, 'tokenizer.json') : dirOrFile;
  } catch {
    throw new ConfigError('tokenizer', `${dirOrFile} does not exist`);
  }
}

interface Component {
  type?: string;
  normalizers?: Component[];
  pretokenizers?: Component[];
  processors?: Component[];
}
interface TokenizerJson {
  model?: Component;
  normalizer?: Component | null;
  pre_tokenizer?: Component | null;
  post_processor?: Component | null;
}

// Char-local normalizers and pre-tokenizers that split at whitespace: cutting text between two pre-tokens
// changes nothing for either side (Metaspace/ByteLevel add prefixes at the sequence start, so they don't).
const LOCAL_NORMALIZERS = new Set([
  'BertNormalizer',
  'NFC',
  'NFD',
  'NFKC',
  'NFKD',
  'Lowercase',
  'StripAccents',
]);
const LOCAL_PRETOKENIZERS = new Set([
  'BertPreTokenizer',
  'Whitespace',
  'WhitespaceSplit',
  'Punctuation',
  'Digits',
]);
const SIMPLE_PROCESSORS = new Set(['BertProcessing', 'TemplateProcessing']);

function isSliceSafe(spec: TokenizerJson): boolean {
  return (
    spec.model?.type === 'WordPiece' &&
    allOf(spec.normalizer, 'normalizers', LOCAL_NORMALIZERS) &&
    spec.pre_tokenizer != null &&
    allOf(spec.pre_tokenizer, 'pretokenizers', LOCAL_PRETOKENIZERS) &&
    allOf(spec.post_processor, 'processors', SIMPLE_PROCESSORS)
  );
}

/**
 * The parts of tokenizer.json that isSliceSafe reads, without parsing the model's vocabulary (most of the
 * file: parsing it costs more than loading the tokenizer). `fromString` has validated the JSON already.
 */
function pipelineSpec(text: string): TokenizerJson {
  const spec: Record<string, unknown> = {};
  const wanted = new Set(['model', 'normalizer', 'pre_tokenizer', 'post_processor']);
  for (const [key, start] of objectEntries(text, text.indexOf('{'))) {
    if (!wanted.delete(key)) continue;
    if (key === 'model') {
      const model: Record<string, unknown> = {};
      for (const [k, a] of objectEntries(text, start)) {
        if (k !== 'type') continue;
        model.type = JSON.parse(text.slice(a, valueEnd(text, a)));
        break; // serialized first: the vocabulary after it is never scanned
      }
      spec.model = model;
    } else spec[key] = JSON.parse(text.slice(start, valueEnd(text, start)));
    if (wanted.size === 0) break; // the model is serialized last
  }
  return spec as TokenizerJson;
}

/**
 * [key, value start] of each member of the JSON object starting at `open` ('{'), lazily: a value is
 * skipped only when the next member is asked for.
 */
function* objectEntries(text: string, open: number): Generator<[string, number]> {
  let i = skipSpace(text, open + 1);
  while (text[i] === '"') {
    const keyEnd = stringEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1); // past ':'
    yield [key, start];
    i = skipSpace(text, valueEnd(text, start));
    if (text[i] === ',') i = skipSpace(text, i + 1);
  }
}

function skipSpace(text: string, i: number): number {
  let j = i;
  while (j < text.length && ' \t\n\r'.includes(text[j] as string)) j += 1;
  return j;
}

/** Index just past the string starting at `i` ('"'). */
function stringEnd(text: string, i: number): number {
  let j = text.indexOf('"', i + 1);
  for (;;) {
    let backslashes = 0;
    while (text[j - 1 - backslashes] === '\\') backslashes += 1;
    if (backslashes % 2 === 0) return j + 1;
    j = text.indexOf('"', j + 1);
  }
}

/** Index just past the JSON value starting at `i`. */
function valueEnd(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return stringEnd(text, i);
  if (c !== '{' && c !== '[') {
    let j = i;
    while (j < text.length && !',}] \t\n\r'.includes(text[j] as string)) j += 1;
    return j;
  }
  const structural = /["{}[\]]/g;
  let depth = 0;
  structural.lastIndex = i;
  for (let m = structural.exec(text); m !== null; m = structural.exec(text)) {
    const d = m[0];
    if (d === '"') structural.lastIndex = stringEnd(text, m.index);
    else if (d === '{' || d === '[') depth += 1;
    else {
      depth -= 1;
      if (depth === 0) return m.index + 1;
    }
  }
  return text.length;
}

function allOf(c: Component | null | undefined, key: keyof Component, allowed: Set<string>): boolean {
  if (c == null) return true;
  if (c.type === 'Sequence')
    return ((c[key] as Component[] | undefined) ?? []).every((x) => allOf(x, key, allowed));
  return allowed.has(c.type ?? '');
}
