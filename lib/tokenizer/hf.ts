/**
 * The part of npm `tokenizers` (HF Rust bindings) we use. Its generated index.d.ts does not compile with
 * skipLibCheck off (undeclared names, initializers in declarations), so it is loaded untyped and described here.
 */

export interface HfEncoding {
  getLength(): number;
  getIds(): number[];
  getOffsets(): [number, number][];
  getWordIds(): (number | null | undefined)[];
  /** Index of the token whose offsets hold code point `pos` (the offsets count code points), or null. */
  charToToken(pos: number, seqId?: number | null): number | null;
}

export interface HfModel {
  readonly __model?: never;
}
export interface HfComponent {
  readonly __component?: never;
}

export interface HfTokenizer {
  encode(text: string, pair?: string | null, opts?: { addSpecialTokens?: boolean }): Promise<HfEncoding>;
  encodeBatch(texts: string[], opts?: { addSpecialTokens?: boolean }): Promise<HfEncoding[]>;
  getVocab(withAddedTokens?: boolean): Record<string, number>;
  getVocabSize(withAddedTokens?: boolean): number;
  tokenToId(token: string): number | null;
  disableTruncation(): void;
  disablePadding(): void;
  setNormalizer(n: HfComponent): void;
  setPreTokenizer(p: HfComponent): void;
  setPostProcessor(p: HfComponent): void;
  setDecoder(d: HfComponent): void;
  addSpecialTokens(tokens: string[]): void;
  train(files: string[]): void;
  save(path: string, pretty?: boolean): void;
}

export interface HfBinding {
  Tokenizer: {
    new (model: HfModel): HfTokenizer;
    fromFile(path: string): HfTokenizer;
    fromString(json: string): HfTokenizer;
  };
  WordPiece: {
    init(
      vocab: Record<string, number>,
      opts?: { unkToken?: string; continuingSubwordPrefix?: string; maxInputCharsPerWord?: number },
    ): HfModel;
    empty(): HfModel;
  };
  bertNormalizer(opts?: {
    cleanText?: boolean;
    handleChineseChars?: boolean;
    stripAccents?: boolean;
    lowercase?: boolean;
  }): HfComponent;
  bertPreTokenizer(): HfComponent;
  bertProcessing(sep: [string, number], cls: [string, number]): HfComponent;
  wordPieceDecoder(prefix?: string, cleanup?: boolean): HfComponent;
}

export const hf: HfBinding = require('tokenizers');
