/**
 * Splitting a document into passages of at most N tokens (special tokens included).
 *
 * The document is cut into sentences at whitespace after terminal punctuation; the sentences are encoded
 * (in one batch, without special tokens) and packed greedily into passages. A sentence longer than a
 * passage is cut between its tokens, preferring whitespace, then any pre-token (word) boundary, using the
 * offsets of that sentence only. With a slice-safe tokenizer (CorpusTokenizer.sliceSafe) a passage's ids,
 * the concatenation of its pieces, equal what encoding the passage text alone gives: normalization and
 * pre-tokenization are local to a word and WordPiece is local to a pre-token, so cutting between words
 * changes nothing on either side.
 */
import type { HfEncoding } from '../tokenizer/hf';
import type { TextSpan } from './text';

/** A passage: its UTF-16 range in the document text and its ids (no special tokens). */
export interface Passage {
  charStart: number;
  charEnd: number;
  /** The ids as consecutive chunks (one per sentence or sentence piece): no copying while packing. */
  chunks: number[][];
  length: number;
  /** Set when the passage was re-encoded alone: its ids with special tokens (tokenizers not slice-safe). */
  fullIds?: number[];
}

export interface DocumentSplit {
  passages: Passage[];
  /** Words longer than a passage, kept only up to the budget (the rest of the word is dropped). */
  truncations: number;
}

/** Pack the sentences `spans` of `text` (encoded as `encodings`) into passages of at most `budget` ids. */
export function packSentences(
  text: string,
  spans: TextSpan[],
  encodings: HfEncoding[],
  budget: number,
): DocumentSplit {
  const passages: Passage[] = [];
  let current: Passage | undefined;
  let truncations = 0;
  for (const [s, span] of spans.entries()) {
    const enc = encodings[s] as HfEncoding;
    const length = enc.getLength();
    if (length === 0) continue;
    const used = current ? current.length : 0;
    if (length <= budget) {
      if (current && used + length > budget) {
        passages.push(current);
        current = undefined;
      }
      current ??= { charStart: span.start, charEnd: span.end, chunks: [], length: 0 };
      current.charEnd = span.end;
      current.chunks.push(enc.getIds());
      current.length += length;
      continue;
    }
    // Too long for any passage: fill the current passage with its head, then cut the rest.
    const cut = cutLongSentence(text, span, enc, budget, current ? budget - used : 0);
    truncations += cut.truncations;
    for (const [i, piece] of cut.pieces.entries()) {
      if (i === 0 && cut.joinsCurrent && current) {
        current.charEnd = piece.charEnd;
        current.chunks.push(...piece.chunks);
        current.length += piece.length;
      } else {
        if (current) passages.push(current);
        current = piece;
      }
    }
  }
  if (current) passages.push(current);
  return { passages, truncations };
}

/** Boundary classes before token i (higher = better place to cut). */
const NONE = 0; // inside a word: between two word pieces
const WORD = 1; // between pre-tokens without a gap, e.g. "foo" | "."
const SPACE = 2; // a gap (whitespace) between tokens

interface LongCut {
  pieces: Passage[];
  /** The first piece fits in the `room` left in the current passage. */
  joinsCurrent: boolean;
  truncations: number;
}

function cutLongSentence(
  text: string,
  span: TextSpan,
  enc: HfEncoding,
  budget: number,
  room: number,
): LongCut {
  const sentence = text.slice(span.start, span.end);
  const { starts, ends } = utf16Offsets(sentence, enc.getOffsets());
  const cls = boundaryClasses(starts, ends, enc.getWordIds());
  const ids = enc.getIds();
  const n = ids.length;
  const piece = (a: number, b: number): Passage => ({
    charStart: span.start + (starts[a] as number),
    charEnd: span.start + (ends[b - 1] as number),
    chunks: [ids.slice(a, b)],
    length: b - a,
  });
  const pieces: Passage[] = [];
  let start = 0;
  let truncations = 0;
  const head = room > 0 ? pickCut(cls, 0, room) : 0;
  if (head > 0) {
    pieces.push(piece(0, head));
    start = head;
  }
  while (start < n) {
    const limit = start + budget;
    let end = limit >= n ? n : pickCut(cls, start, limit);
    let next = end;
    if (end === start) {
      // One word longer than a whole passage: keep its first pieces (a word-piece prefix re-encodes to
      // the same pieces), drop the rest of the word.
      end = limit;
      next = limit;
      while (next < n && cls[next] === NONE) next += 1;
      truncations += 1;
    }
    pieces.push(piece(start, end));
    start = next;
  }
  return { pieces, joinsCurrent: head > 0, truncations };
}

/** The last boundary in (start, limit], preferring whitespace; `start` when there is none. */
function pickCut(cls: Uint8Array, start: number, limit: number): number {
  let word = start;
  for (let i = limit; i > start; i -= 1) {
    if (cls[i] === SPACE) return i;
    if (cls[i] === WORD && word === start) word = i;
  }
  return word;
}

function boundaryClasses(
  starts: Int32Array,
  ends: Int32Array,
  wordIds: (number | null | undefined)[],
): Uint8Array {
  const n = starts.length;
  const cls = new Uint8Array(n + 1);
  cls[n] = SPACE;
  for (let i = 1; i < n; i += 1) {
    if (wordIds[i] === wordIds[i - 1]) continue; // NONE
    cls[i] = (starts[i] as number) > (ends[i - 1] as number) ? SPACE : WORD;
  }
  return cls;
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
