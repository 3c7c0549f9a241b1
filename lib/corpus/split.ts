/**
 * Splitting one encoded document into passages of at most N tokens (special tokens included).
 *
 * The document is encoded once without special tokens; passages are cut between tokens, preferring a
 * sentence end, then whitespace, then any pre-token (word) boundary. With a slice-safe tokenizer (see
 * CorpusTokenizer.sliceSafe) the ids of a slice equal what encoding the passage text alone gives, because
 * normalization and pre-tokenization are local to words and WordPiece is local to a pre-token.
 */
import type { HfEncoding } from '../tokenizer/hf';
import { sentenceEnds } from './text';

/** Boundary classes before token i (higher = better place to cut). */
const NONE = 0; // inside a word: between two word pieces
const WORD = 1; // between pre-tokens without a gap, e.g. "foo" | "."
const SPACE = 2; // a gap (whitespace) between tokens
const SENTENCE = 3; // a gap containing a sentence end

export interface PassageSlice {
  /** UTF-16 range of the passage text in the document text. */
  charStart: number;
  charEnd: number;
  /** Token range [tokenStart, tokenEnd) of the document encoding. */
  tokenStart: number;
  tokenEnd: number;
}

export interface DocumentSplit {
  slices: PassageSlice[];
  /** Words longer than a passage, kept only up to the budget (the rest of the word is dropped). */
  truncations: number;
}

/** Cut `enc` (the encoding of `text`, no special tokens) into slices of at most `budget` tokens. */
export function splitDocument(text: string, enc: HfEncoding, budget: number): DocumentSplit {
  const { starts, ends } = utf16Offsets(text, enc.getOffsets());
  const n = starts.length;
  const cls = boundaryClasses(text, starts, ends, enc.getWordIds());
  const nextSentence = nextSentenceBoundaries(cls);
  const slices: PassageSlice[] = [];
  let truncations = 0;
  let start = 0;
  while (start < n) {
    const limit = start + budget;
    let end = limit >= n ? n : pickCut(cls, nextSentence, start, limit, budget);
    let next = end;
    if (end === start) {
      // One word longer than a whole passage: keep its first pieces (a word-piece prefix re-encodes to
      // the same pieces), drop the rest of the word.
      end = limit;
      next = limit;
      while (next < n && cls[next] === NONE) next += 1;
      truncations += 1;
    }
    slices.push({
      charStart: starts[start] as number,
      charEnd: ends[end - 1] as number,
      tokenStart: start,
      tokenEnd: end,
    });
    start = next;
  }
  return { slices, truncations };
}

/** Where to end a passage starting at `start` that cannot reach past `limit`; `start` = no boundary. */
function pickCut(
  cls: Uint8Array,
  nextSentence: Int32Array,
  start: number,
  limit: number,
  budget: number,
): number {
  const sentence = lastBoundary(cls, start, limit, SENTENCE);
  // Cut at the last sentence end unless the sentence after it is too long for any passage anyway:
  // then fill this passage and cut that sentence at a space.
  if (sentence > start && (nextSentence[sentence] as number) - sentence <= budget) return sentence;
  const space = lastBoundary(cls, start, limit, SPACE);
  return space > start ? space : lastBoundary(cls, start, limit, WORD);
}

function lastBoundary(cls: Uint8Array, start: number, limit: number, atLeast: number): number {
  for (let i = limit; i > start; i -= 1) if ((cls[i] as number) >= atLeast) return i;
  return start;
}

function boundaryClasses(
  text: string,
  starts: Int32Array,
  ends: Int32Array,
  wordIds: (number | null | undefined)[],
): Uint8Array {
  const n = starts.length;
  const cls = new Uint8Array(n + 1);
  cls[0] = SENTENCE;
  cls[n] = SENTENCE;
  const sentEnds = sentenceEnds(text);
  let q = 0;
  for (let i = 1; i < n; i += 1) {
    if (wordIds[i] === wordIds[i - 1]) continue; // NONE
    const gapStart = ends[i - 1] as number;
    const gapEnd = starts[i] as number;
    if (gapEnd <= gapStart) {
      cls[i] = WORD;
      continue;
    }
    while (q < sentEnds.length && (sentEnds[q] as number) < gapStart) q += 1;
    cls[i] = q < sentEnds.length && (sentEnds[q] as number) <= gapEnd ? SENTENCE : SPACE;
  }
  return cls;
}

/** nextSentence[i] = the first sentence boundary after i (n when none). */
function nextSentenceBoundaries(cls: Uint8Array): Int32Array {
  const n = cls.length - 1;
  const next = new Int32Array(n + 1);
  next[n] = n;
  for (let i = n - 1; i >= 0; i -= 1) next[i] = cls[i + 1] === SENTENCE ? i + 1 : (next[i + 1] as number);
  return next;
}

/** Token offsets from the tokenizer count code points; JS strings index UTF-16 units. */
function utf16Offsets(text: string, offsets: [number, number][]): { starts: Int32Array; ends: Int32Array } {
  const n = offsets.length;
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  const map = ASTRAL.test(text) ? codePointToUtf16(text) : undefined;
  for (let i = 0; i < n; i += 1) {
    const o = offsets[i] as [number, number];
    starts[i] = map ? (map[o[0]] as number) : o[0];
    ends[i] = map ? (map[o[1]] as number) : o[1];
  }
  return { starts, ends };
}

const ASTRAL = /[\uD800-\uDFFF]/;

function codePointToUtf16(text: string): Int32Array {
  const map = new Int32Array(text.length + 1);
  let cp = 0;
  for (let i = 0; i < text.length; i += 1) {
    map[cp] = i;
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) i += 1;
    cp += 1;
  }
  map[cp] = text.length;
  return map;
}
