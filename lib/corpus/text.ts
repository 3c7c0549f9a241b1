/** Text normalization before tokenizing, and sentence ends (Hebrew-aware) for passage splitting. */
import type { CorpusPrepConfig } from './types';

// Hebrew points and cantillation marks in U+0591–U+05C7; the punctuation in that block (maqaf U+05BE,
// paseq U+05C0, sof pasuq U+05C3, nun hafukha U+05C6) is kept.
const NIQQUD = /[\u0591-\u05BD\u05BF\u05C1\u05C2\u05C4\u05C5\u05C7]/g;

/** Unicode normalization (NFC by default), then optional niqqud stripping. */
export function normalizeText(
  text: string,
  cfg: Pick<CorpusPrepConfig, 'normalization' | 'strip_niqqud'>,
): string {
  const normalized = cfg.normalization === 'none' ? text : text.normalize(cfg.normalization);
  return cfg.strip_niqqud ? normalized.replace(NIQQUD, '') : normalized;
}

// A sentence ends after terminal punctuation (Latin, Hebrew sof pasuq, Arabic, CJK, ellipsis) plus any
// closing quotes/brackets, when whitespace follows; a line break always ends one.
const SENTENCE_END = /[.!?…\u05C3\u061F\u06D4\u3002\uFF01\uFF1F]+["'”’»)\]\u05F4]*(?=\s)|\n/g;

/** A UTF-16 range [start, end) of a text. */
export interface TextSpan {
  start: number;
  end: number;
}

/**
 * The sentences of `text`, whitespace trimmed, empty ones left out. Every cut is at whitespace, so for a
 * slice-safe tokenizer the sentences' tokens are exactly the text's tokens.
 */
export function sentenceSpans(text: string): TextSpan[] {
  const spans: TextSpan[] = [];
  let from = 0;
  SENTENCE_END.lastIndex = 0;
  for (let m = SENTENCE_END.exec(text); m !== null; m = SENTENCE_END.exec(text)) {
    pushTrimmed(text, from, m.index + m[0].length, spans);
    from = m.index + m[0].length;
  }
  pushTrimmed(text, from, text.length, spans);
  return spans;
}

function pushTrimmed(text: string, start: number, end: number, spans: TextSpan[]): void {
  let a = start;
  let b = end;
  while (a < b && WHITESPACE.test(text.charAt(a))) a += 1;
  while (b > a && WHITESPACE.test(text.charAt(b - 1))) b -= 1;
  if (b > a) spans.push({ start: a, end: b });
}

const WHITESPACE = /\s/;
