/**
 * DocTokens (see split.ts) from the tokenizer's encodings: of the whole document (one encoding per
 * document: the usual case) or of its sentences (one encoding per sentence: the fallback).
 */
import type { HfEncoding } from '../tokenizer/hf';
import type { DocTokens, SentenceDetail } from './split';
import type { TextSpan } from './text';

/** Characters a sentence may start with before its first token (dropped by the normalizer, e.g. U+200F). */
const MAX_LEADING_DROPPED = 8;

/**
 * The tokens of `text` encoded whole, split by sentence, or undefined when the encoding cannot be split at
 * the sentence starts (then encode the sentences: see sentenceDocTokens). Sentence starts are found with
 * `charToToken` (a few native calls per document, no offsets read): the token holding the first character
 * of a sentence that has one (only the first and last sentence when the whole text fits in `budget`
 * tokens: the others do not change where the single passage starts and ends).
 */
export function wholeDocTokens(
  text: string,
  spans: readonly TextSpan[],
  enc: HfEncoding,
  budget: number,
): DocTokens | undefined {
  const m = spans.length;
  const n = enc.getLength();
  const starts = new Int32Array(m + 1);
  starts[m] = n;
  if (n === 0) return lazyDocTokens(spans, starts, enc, text); // every sentence empty
  // U+FEFF is whitespace to JS (our sentence cuts) but not to the tokenizer: sentences may share a token.
  if (text.includes('\uFEFF')) return undefined;
  const cp = codePointIndex(text);
  if (n <= budget) {
    // One passage: it must start in the first sentence and end in the last one, as when packing by sentence.
    if (firstToken(enc, cp, spans[0] as TextSpan) !== 0) return undefined;
    if (m > 1 && firstToken(enc, cp, spans[m - 1] as TextSpan) === undefined) return undefined;
    // So one "sentence" from the first to the last: the same passage (range and ids) as packing by sentence.
    const whole = [{ start: (spans[0] as TextSpan).start, end: (spans[m - 1] as TextSpan).end }];
    return lazyDocTokens(whole, Int32Array.of(0, n), enc, text);
  }
  let prev = -1;
  for (let s = 0; s < m; s += 1) {
    const t = firstToken(enc, cp, spans[s] as TextSpan);
    if (t === undefined || t <= prev || (s === 0 && t !== 0)) return undefined;
    starts[s] = t;
    prev = t;
  }
  return lazyDocTokens(spans, starts, enc, text);
}

/**
 * Index of the first token of a sentence: the token holding its first character that is in a token, that
 * token starting inside the sentence (the whitespace before it is in no token). Undefined if not found.
 */
function firstToken(enc: HfEncoding, cp: (i: number) => number, span: TextSpan): number | undefined {
  const a = cp(span.start);
  if (a > 0 && enc.charToToken(a - 1) != null) return undefined;
  const end = Math.min(cp(span.end), a + MAX_LEADING_DROPPED);
  for (let p = a; p < end; p += 1) {
    const t = enc.charToToken(p);
    if (t != null) return t;
  }
  return undefined;
}

function lazyDocTokens(
  spans: readonly TextSpan[],
  starts: Int32Array,
  enc: HfEncoding,
  text: string,
): DocTokens {
  let ids: number[] | undefined;
  let offsets: { starts: Int32Array; ends: Int32Array } | undefined;
  let wordIds: (number | null | undefined)[] | undefined;
  return {
    spans,
    starts,
    ids: () => {
      ids ??= enc.getIds();
      return ids;
    },
    detail(s: number): SentenceDetail {
      offsets ??= utf16Offsets(text, enc.getOffsets());
      wordIds ??= enc.getWordIds();
      const [a, b] = [starts[s] as number, starts[s + 1] as number];
      return {
        starts: offsets.starts.subarray(a, b),
        ends: offsets.ends.subarray(a, b),
        wordIds: wordIds.slice(a, b),
      };
    },
  };
}

/** The tokens of a document from one encoding per sentence (`encodings[s]` = sentence s of `spans`). */
export function sentenceDocTokens(
  text: string,
  spans: readonly TextSpan[],
  encodings: readonly HfEncoding[],
): DocTokens {
  const m = spans.length;
  const starts = new Int32Array(m + 1);
  for (let s = 0; s < m; s += 1)
    starts[s + 1] = (starts[s] as number) + (encodings[s] as HfEncoding).getLength();
  let ids: number[] | undefined;
  return {
    spans,
    starts,
    ids: () => {
      if (ids) return ids;
      ids = [];
      for (const enc of encodings) for (const id of enc.getIds()) ids.push(id);
      return ids;
    },
    detail(s: number): SentenceDetail {
      const span = spans[s] as TextSpan;
      const enc = encodings[s] as HfEncoding;
      const { starts: a, ends: b } = utf16Offsets(text.slice(span.start, span.end), enc.getOffsets());
      for (let i = 0; i < a.length; i += 1) {
        a[i] = (a[i] as number) + span.start;
        b[i] = (b[i] as number) + span.start;
      }
      return { starts: a, ends: b, wordIds: enc.getWordIds() };
    },
  };
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** Token offsets from the tokenizer count code points; JS strings index UTF-16 units. */
function utf16Offsets(text: string, offsets: [number, number][]): { starts: Int32Array; ends: Int32Array } {
  const n = offsets.length;
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  const map = SURROGATE.test(text) ? codePointToUtf16(text) : undefined;
  for (let i = 0; i < n; i += 1) {
    const o = offsets[i] as [number, number];
    starts[i] = map ? (map[o[0]] as number) : o[0];
    ends[i] = map ? (map[o[1]] as number) : o[1];
  }
  return { starts, ends };
}

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

/** UTF-16 index → code-point index (the identity for text without surrogates). */
function codePointIndex(text: string): (i: number) => number {
  if (!SURROGATE.test(text)) return (i) => i;
  const map = new Int32Array(text.length + 1);
  let cp = 0;
  for (let i = 0; i < text.length; i += 1) {
    map[i] = cp;
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      i += 1;
      map[i] = cp;
    }
    cp += 1;
  }
  map[text.length] = cp;
  return (i) => map[i] as number;
}
