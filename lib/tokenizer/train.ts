/**
 * Training a BERT WordPiece vocabulary with npm `tokenizers`. Its train() runs a fixed default trainer (at
 * most 30000 tokens, no special tokens), so the learned vocabulary is rebuilt with [PAD] [UNK] [CLS] [SEP]
 * [MASK] first and cut to vocab_size by merge order (= training with that smaller size), and the model is
 * re-created with WordPiece.init.
 */

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_TRAINED_VOCAB } from '../corpus/config';
import { ConfigError } from '../errors';
import { type HfTokenizer, hf } from './hf';
import { SPECIAL_TOKENS, writeHfTokenizerDir } from './hf-dir';
import { type CorpusTokenizer, loadTokenizer } from './load';

/** Options of trainWordPieceTokenizer (same keys as CorpusPrepConfig). */
export interface TrainTokenizerOptions {
  /** Vocabulary size including the 5 special tokens; at most 30005 (npm trainer cap). */
  vocab_size: number;
  /** Lowercase and strip accents (bert-base-uncased style). */
  lowercase: boolean;
}

/**
 * Train a BERT WordPiece tokenizer on `texts` (already normalized, one document each) and save it as an HF
 * tokenizer directory in `outDir` (tokenizer.json, vocab.txt, tokenizer_config.json, special_tokens_map.json).
 */
export async function trainWordPieceTokenizer(
  texts: Iterable<string> | AsyncIterable<string>,
  opts: TrainTokenizerOptions,
  outDir: string,
): Promise<CorpusTokenizer> {
  if (opts.vocab_size > MAX_TRAINED_VOCAB || opts.vocab_size <= SPECIAL_TOKENS.length) {
    throw new ConfigError('vocab_size', `must be in (${SPECIAL_TOKENS.length}, ${MAX_TRAINED_VOCAB}]`);
  }
  await mkdir(outDir, { recursive: true });
  const textFile = join(outDir, `.train-${process.pid}.txt`);
  try {
    await writeTrainingText(texts, textFile);
    const learned = learnVocabulary(textFile, opts.lowercase);
    const vocab = withSpecialTokens(learned, opts.vocab_size);
    await writeHfTokenizerDir(bertWordPiece(vocab, opts.lowercase), vocab, opts.lowercase, outDir);
  } finally {
    await rm(textFile, { force: true });
  }
  return loadTokenizer(outDir);
}

/** One document per line: the trainer reads files line by line. */
async function writeTrainingText(
  texts: Iterable<string> | AsyncIterable<string>,
  path: string,
): Promise<void> {
  const out = createWriteStream(path);
  for await (const text of texts) {
    if (!out.write(`${text.replace(/[\r\n]+/g, ' ')}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Learned tokens in the trainer's id order (alphabet first, then merges in the order they were made). */
function learnVocabulary(textFile: string, lowercase: boolean): string[] {
  const trainer = new hf.Tokenizer(hf.WordPiece.empty());
  trainer.setNormalizer(hf.bertNormalizer({ lowercase }));
  trainer.setPreTokenizer(hf.bertPreTokenizer());
  trainer.train([textFile]);
  return Object.entries(trainer.getVocab())
    .sort((a, b) => a[1] - b[1])
    .map(([token]) => token);
}

function withSpecialTokens(learned: string[], vocabSize: number): string[] {
  const special = new Set<string>(SPECIAL_TOKENS);
  return [...SPECIAL_TOKENS, ...learned.filter((t) => !special.has(t))].slice(0, vocabSize);
}

/** BERT pipeline: BertNormalizer, BertPreTokenizer, WordPiece, [CLS] $A [SEP], WordPiece decoder. */
function bertWordPiece(vocab: string[], lowercase: boolean): HfTokenizer {
  const ids = Object.fromEntries(vocab.map((t, i) => [t, i]));
  const tok = new hf.Tokenizer(
    hf.WordPiece.init(ids, { unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 }),
  );
  // strip_accents left unset (null): it follows lowercase, as transformers' BertTokenizer expects.
  tok.setNormalizer(hf.bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase }));
  tok.setPreTokenizer(hf.bertPreTokenizer());
  tok.setPostProcessor(
    hf.bertProcessing(['[SEP]', ids['[SEP]'] as number], ['[CLS]', ids['[CLS]'] as number]),
  );
  tok.setDecoder(hf.wordPieceDecoder('##', true));
  tok.addSpecialTokens([...SPECIAL_TOKENS]);
  return tok;
}
