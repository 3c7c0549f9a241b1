/**
 * Splitting a document into passages of at most N tokens (special tokens included).
 *
 * The document is cut into sentences at whitespace after terminal punctuation; its tokens (see DocTokens:
 * the document encoded whole, or its sentences encoded one by one) are packed greedily into passages by
 * sentence. A sentence longer than a passage is cut between its tokens, preferring whitespace, then any
 * pre-token (word) boundary, using the offsets of that sentence only. With a slice-safe tokenizer
 * (CorpusTokenizer.sliceSafe) a passage's ids, a run of the document's tokens, equal what encoding the
 * passage text alone gives: normalization and pre-tokenization are local to a word and WordPiece is local
 * to a pre-token, so cutting between words changes nothing on either side.
 */
import type { TextSpan } from './text';

/**
 * The tokens of a document (no special tokens), by sentence: sentence s of `spans` holds tokens
 * [starts[s], starts[s + 1]) of `ids()`, all inside its span.
 */
export interface DocTokens {
  /** The sentences (UTF-16 ranges of the text). */
  readonly spans: readonly TextSpan[];
  /** Length spans.length + 1; non-decreasing; the last entry is the token count. */
  readonly starts: Int32Array;
  /** All ids, sentence after sentence (read once, on first use). */
  ids(): ArrayLike<number>;
  /** For cutting sentence s: its tokens' UTF-16 offsets in the document text, and their word ids. */
  detail(s: number): SentenceDetail;
}

export interface SentenceDetail {
  starts: Int32Array;
  ends: Int32Array;
  /** Only compared between neighbours: equal = same word. */
  wordIds: ArrayLike<number | null | undefined>;
}

/** A passage: its UTF-16 range in the document text and its ids, tokens [tokStart, tokEnd) of the doc. */
export interface Passage {
  charStart: number;
  charEnd: number;
  tokStart: number;
  tokEnd: number;
  /** Set when the passage was re-encoded alone: its ids with special tokens (tokenizers not slice-safe). */
  fullIds?: number[];
}

export interface DocumentSplit {
  passages: Passage[];
  /** Words longer than a passage, kept only up to the budget (the rest of the word is dropped). */
  truncations: number;
}

/** Pack the sentences of a document (with their tokens: `tokens`) into passages of at most `budget` ids. */
export function packSentences(tokens: DocTokens, budget: number): DocumentSplit {
  const { starts, spans } = tokens;
  const passages: Passage[] = [];
  let current: Passage | undefined;
  let truncations = 0;
  for (let s = 0; s < spans.length; s += 1) {
    const span = spans[s] as TextSpan;
    const first = starts[s] as number;
    const length = (starts[s + 1] as number) - first;
    if (length === 0) continue;
    const used = current ? current.tokEnd - current.tokStart : 0;
    if (length <= budget) {
      if (current && used + length > budget) {
        passages.push(current);
        current = undefined;
      }
      if (current) {
        current.charEnd = span.end;
        current.tokEnd = first + length;
      } else {
        current = { charStart: span.start, charEnd: span.end, tokStart: first, tokEnd: first + length };
      }
      continue;
    }
    // Too long for any passage: fill the current passage with its head, then cut the rest.
    const cut = cutLongSentence(tokens.detail(s), first, length, budget, current ? budget - used : 0);
    truncations += cut.truncations;
    for (const [i, piece] of cut.pieces.entries()) {
      if (i === 0 && cut.joinsCurrent && current) {
        // The head follows the current passage's last token: the passage stays one run of tokens.
        current.charEnd = piece.charEnd;
        current.tokEnd = piece.tokEnd;
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

/** Cut a sentence of `n` tokens starting at doc token `first`; `detail` has its offsets and word ids. */
function cutLongSentence(
  detail: SentenceDetail,
  first: number,
  n: number,
  budget: number,
  room: number,
): LongCut {
  const { starts, ends } = detail;
  const cls = boundaryClasses(starts, ends, detail.wordIds);
  const piece = (a: number, b: number): Passage => ({
    charStart: starts[a] as number,
    charEnd: ends[b - 1] as number,
    tokStart: first + a,
    tokEnd: first + b,
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
  wordIds: ArrayLike<number | null | undefined>,
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
