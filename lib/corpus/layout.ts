/** Format detection and file roles from a directory listing (relative paths, '/' separators). */
import { ConfigError } from '../errors';
import type { CorpusFormat, CorpusLayout } from './types';

type Roles = Omit<CorpusLayout, 'format'>;

const GZ = '(?:\\.gz)?$';
const BEIR_CORPUS = new RegExp(`^corpus\\.jsonl${GZ}`);
const BEIR_QUERIES = new RegExp(`^queries\\.jsonl${GZ}`);
const BEIR_QRELS = new RegExp(`^qrels/([^/]+)\\.tsv${GZ}`);
const MARCO_COLLECTION = new RegExp(`^collection\\.tsv${GZ}`);
const MARCO_QUERIES = new RegExp(`^queries(?:\\.([^/]+))?\\.tsv${GZ}`);
const MARCO_QRELS = new RegExp(`^(?:qrels(?:\\.([^/]+))?\\.(?:tsv|txt)|qrels/([^/]+)\\.(?:tsv|txt))${GZ}`);
const SQUAD_FILE = new RegExp(`\\.json${GZ}`);
const JSONL_FILE = new RegExp(`\\.jsonl${GZ}`);

/** Layout of a listing; detection order: beir, msmarco, squad, jsonl (see docs/formats.md). */
export function detectLayoutFromListing(
  listing: readonly string[],
  formatOverride?: CorpusFormat,
): CorpusLayout {
  const names = [...listing].filter((n) => !n.split('/').some((part) => part.startsWith('.'))).sort();
  const format = formatOverride ?? guessFormat(names);
  if (!format) {
    throw new ConfigError(
      'format',
      `cannot detect the input format from ${names.length} files (expected corpus.jsonl, collection.tsv, *.json or *.jsonl); set it explicitly`,
    );
  }
  const roles = ROLE_FINDERS[format](names);
  if (roles.corpus.length === 0)
    throw new ConfigError('format', `no corpus file for format '${format}' in the listing`);
  return { format, ...roles };
}

function guessFormat(names: readonly string[]): CorpusFormat | undefined {
  if (names.some((n) => BEIR_CORPUS.test(n))) return 'beir';
  if (names.some((n) => MARCO_COLLECTION.test(n))) return 'msmarco';
  if (names.some((n) => SQUAD_FILE.test(n))) return 'squad';
  if (names.some((n) => JSONL_FILE.test(n))) return 'jsonl';
  return undefined;
}

const ROLE_FINDERS: Record<CorpusFormat, (names: readonly string[]) => Roles> = {
  beir: (names) => ({
    corpus: names.filter((n) => BEIR_CORPUS.test(n)),
    queries: withSplit(names, BEIR_QUERIES, 'all'),
    qrels: withSplit(names, BEIR_QRELS, 'all'),
  }),
  msmarco: (names) => ({
    corpus: names.filter((n) => MARCO_COLLECTION.test(n)),
    queries: withSplit(names, MARCO_QUERIES, 'all'),
    qrels: withSplit(names, MARCO_QRELS, 'all'),
  }),
  squad: (names) => ({ corpus: names.filter((n) => SQUAD_FILE.test(n)), queries: [], qrels: [] }),
  jsonl: (names) => ({
    corpus: names.filter((n) => JSONL_FILE.test(n) && !/(^|\/)queries\.jsonl/.test(n)),
    queries: [],
    qrels: [],
  }),
};

/** Files matching `re`, with the split taken from the first non-empty capture group. */
function withSplit(names: readonly string[], re: RegExp, fallback: string) {
  const out: { file: string; split: string }[] = [];
  for (const file of names) {
    const m = re.exec(file);
    if (m) out.push({ file, split: m.slice(1).find((g) => g) ?? fallback });
  }
  return out;
}
