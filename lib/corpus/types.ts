/** Shared types of the corpus-preparation domain (no Temporal, no I/O). */
import type { Readable } from 'node:stream';

/** Input layouts we can read. See docs/formats.md for each one's files. */
export type CorpusFormat = 'beir' | 'msmarco' | 'jsonl' | 'squad';
export const CORPUS_FORMATS: readonly CorpusFormat[] = ['beir', 'msmarco', 'jsonl', 'squad'];

/** Byte range [start, end) of a file: end is exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * One input file, local or remote. `name` is its path relative to the corpus root with '/' separators
 * (what detectLayout sees); `open(range)` returns the raw (still gzipped) bytes of [start, end).
 */
export interface InputFile {
  name: string;
  size: number;
  open(range?: ByteRange): Promise<NodeJS.ReadableStream | Readable>;
  /**
   * Where the bytes are, as plain data: lets another thread or process open the same file (tokenizer
   * training off the event loop). Set by listLocalInputs/localInputFile and by dataset sources; files
   * without one are read by the calling thread instead.
   */
  locator?: InputLocator;
}

/**
 * A serializable description of an InputFile's bytes: a local path (absolute), or an object of an artifact
 * store (`root` as given to openStore, `key` relative to it; credentials come from the environment).
 */
export type InputLocator = { kind: 'local'; path: string } | { kind: 'store'; root: string; key: string };

/** Which files of a listing play which role. Names are InputFile names. */
export interface CorpusLayout {
  format: CorpusFormat;
  /** Files holding documents (for squad: the QA JSON files, which also hold queries and qrels). */
  corpus: string[];
  /** Query files with their split (squad: empty, queries come from the corpus files). */
  queries: { file: string; split: string }[];
  /** Qrels files with their split (squad: empty). */
  qrels: { file: string; split: string }[];
}

/** One unit of work: a byte range of one line-based file, or a whole .gz / squad file. */
export interface ShardSpec {
  /** 0-based position in the plan; shard outputs are concatenated in this order. */
  index: number;
  format: CorpusFormat;
  file: string;
  /** Absent: the whole file. Present: starts and ends at line starts. */
  range?: ByteRange;
  /** 1-based line number of the first line of the range when known; otherwise counted lazily on error. */
  first_line?: number;
}

export type PairStrategy = 'adjacent' | 'random';
export type SinglePassagePolicy = 'skip' | 'self';
export type TextNormalization = 'NFC' | 'NFKC' | 'none';
export type EmptyTextPolicy = 'error' | 'skip';

/** Stage config of corpus preparation: snake_case keys, passed through unchanged. Defaults in config.ts. */
export interface CorpusPrepConfig {
  /** Input layout; absent = detect from the listing. */
  format?: CorpusFormat;
  /** Max tokens per passage, [CLS] and [SEP] included. Default 128. */
  max_passage_tokens: number;
  /** How a passage's context passage is chosen. Default 'adjacent' (next passage, previous for the last). */
  pair_strategy: PairStrategy;
  /** For 'random': the context is drawn uniformly from positions within ±pair_window. Default 2. */
  pair_window: number;
  /** Documents with one passage: 'skip' (no pair, counted) or 'self' (paired with itself). Default 'skip'. */
  single_passage_docs: SinglePassagePolicy;
  /** Seed of the random pair strategy; pairs depend only on (seed, passage id). Default 42. */
  seed: number;
  /** Unicode normalization applied to every text before tokenizing. Default 'NFC'. */
  normalization: TextNormalization;
  /** Remove Hebrew niqqud and cantillation marks (U+0591–U+05C7 combining marks). Default false. */
  strip_niqqud: boolean;
  /**
   * Documents whose text is empty (after normalization, or without a single token): 'error' (bad input) or
   * 'skip' (no passages; the id still counts as a corpus id; counted in empty_docs). Default 'error'.
   */
  empty_text: EmptyTextPolicy;
  /** A longer input line is bad input. Default 1 MiB. */
  max_line_bytes: number;
  /** Drop qrels naming unknown query/doc ids (and report the count) instead of failing. Default false. */
  drop_unknown_qrels: boolean;
  /** Vocabulary size of a tokenizer trained on the corpus, special tokens included. Default 30000. */
  vocab_size: number;
  /** Lowercase (and strip accents) in a trained tokenizer. Default true (bert-base-uncased style). */
  lowercase: boolean;
  /** Target bytes per shard for splittable (uncompressed line-based) files. Default 64 MiB. */
  shard_bytes: number;
  /** Documents per encodeBatch call. Default 256. */
  encode_batch_docs: number;
}

/** Counters of one shard, or of the whole corpus after mergeStats. */
export interface CorpusStats {
  docs: number;
  passages: number;
  /** Tokens in passages, special tokens included. */
  tokens: number;
  /** Documents that produced one passage (skipped from pairing, or self-paired). */
  single_passage_docs: number;
  pairs: number;
  /** Words longer than a whole passage, cut at a word-piece boundary (their tail is dropped). */
  truncations: number;
  /** Documents skipped for an empty text (empty_text: 'skip'). */
  empty_docs: number;
  /** Blank lines skipped in line-based inputs. */
  blank_lines: number;
  /** Passage length histogram: counts[i] = passages with floor(n_tokens / bucket_width) == i. */
  length_histogram: { bucket_width: number; counts: number[] };
}

/** Files a shard writes into its out dir (names relative to that dir). See docs/formats.md. */
export interface ShardFiles {
  passages: string;
  tokens: string;
  pairs: string;
  doc_ids: string;
  doc_id_hashes: string;
  stats: string;
}

/** Returned by prepareShard: small, serializable. */
export interface ShardResult {
  shard: ShardSpec;
  /** Where the files were written; finalizeCorpus reads doc_ids/doc_id_hashes from here. */
  out_dir: string;
  files: ShardFiles;
  /** Lines in the shard's range (blank ones included): finalize derives absolute line numbers from it. */
  line_count: number;
  stats: CorpusStats;
}

/** Heartbeat payload of prepareShard. */
export interface ShardProgress {
  shard: number;
  bytes_read: number;
  lines: number;
  docs: number;
  passages: number;
}

/** Membership test for doc ids (e.g. from finalizeCorpus' sorted hash file). */
export interface DocIdSet {
  readonly size: number;
  has(id: string): boolean;
}

/** Returned by prepareQueries. */
export interface QueriesResult {
  queries: number;
  /** Qrels lines written per split. */
  qrels: Record<string, number>;
  /** Qrels dropped because they name unknown ids (only with drop_unknown_qrels). */
  dropped_qrels: number;
  /** SQuAD questions marked is_impossible: kept as queries, given no qrels. */
  unanswerable: number;
  files: { queries: string; qrels: Record<string, string> };
}

/** Written by finalizeCorpus as corpus.json. */
export interface CorpusManifest {
  format_version: 1;
  shards: {
    index: number;
    file: string;
    /** The shard's out_dir relative to finalize's outDir ('/' separators). */
    dir: string;
    first_line: number;
    passage_offset: number;
    passages: number;
    docs: number;
    files: ShardFiles;
  }[];
  stats: CorpusStats;
  /** Sorted uint64 little-endian hashes of all doc ids (for loadDocIdSet). */
  doc_id_hashes: string;
}
