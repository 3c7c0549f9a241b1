/**
 * Training a BERT WordPiece vocabulary with npm `tokenizers`. Its train() runs a fixed default trainer (at
 * most 30000 tokens, no special tokens), so the learned vocabulary is rebuilt with [PAD] [UNK] [CLS] [SEP]
 * [MASK] first and cut to vocab_size by merge order (= training with that smaller size), and the model is
 * re-created with WordPiece.init.
 */

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_TRAINED_VOCAB } from '../corpus/config';
import { BadInputError, ConfigError } from '../errors';
import { type HfTokenizer, hf } from './hf';
import { SPECIAL_TOKENS, writeHfTokenizerDir } from './hf-dir';
import { type CorpusTokenizer, loadTokenizer } from './load';

/** Options of trainWordPieceTokenizer (same keys as CorpusPrepConfig). */
export interface TrainTokenizerOptions {
  /** Vocabulary size including the 5 special tokens; at most 30005 (npm trainer cap). */
  vocab_size: number;
  /** Lowercase and strip accents (bert-base-uncased style). */
  lowercase: boolean;
  /** The corpus as the user named it (path or URI), named by the "no documents" error. Default 'corpus'. */
  source?: string;
}

/**
 * Train a BERT WordPiece tokenizer on `texts` (already normalized, one document each) and save it as an HF
 * tokenizer directory in `outDir` (tokenizer.json, vocab.txt, tokenizer_config.json, special_tokens_map.json).
 * Runs the trainer on the calling thread, blocking its event loop for the whole training (seconds per 10 MB
 * of text): workers should use trainWordPieceTokenizerOffThread (lib/corpus). No text with a non-blank
 * character at all is a BadInputError naming `opts.source`.
 */
export async function trainWordPieceTokenizer(
  texts: Iterable<string> | AsyncIterable<string>,
  opts: TrainTokenizerOptions,
  outDir: string,
): Promise<CorpusTokenizer> {
  checkTrainOptions(opts);
  await mkdir(outDir, { recursive: true });
  const textFile = join(outDir, `.train-${process.pid}-${randomBytes(4).toString('hex')}.txt`);
  try {
    const docs = await writeTrainingText(texts, textFile);
    if (docs === 0) throw noDocumentsError(opts.source);
    await trainFromTextFile(textFile, opts, outDir);
  } finally {
    await rm(textFile, { force: true });
  }
  return loadTokenizer(outDir);
}

/** ConfigError('vocab_size') unless the npm trainer can learn that many tokens. */
export function checkTrainOptions(opts: TrainTokenizerOptions): void {
  if (
    !Number.isSafeInteger(opts.vocab_size) ||
    opts.vocab_size > MAX_TRAINED_VOCAB ||
    opts.vocab_size <= SPECIAL_TOKENS.length
  ) {
    throw new ConfigError('vocab_size', `must be in (${SPECIAL_TOKENS.length}, ${MAX_TRAINED_VOCAB}]`);
  }
}

/** The corpus gave the trainer nothing: bad input of the corpus as the user named it. */
export function noDocumentsError(source = 'corpus'): BadInputError {
  return new BadInputError(
    source,
    undefined,
    'no documents: nothing to train a tokenizer on (the corpus is empty, or every document text is empty)',
  );
}

/**
 * One document per line (the trainer reads files line by line); returns how many texts have a non-blank
 * character. `onText` is called after each text (progress).
 */
export async function writeTrainingText(
  texts: Iterable<string> | AsyncIterable<string>,
  path: string,
  onText?: (text: string) => void,
): Promise<number> {
  const out = createWriteStream(path);
  let docs = 0;
  try {
    for await (const text of texts) {
      if (/\S/.test(text)) docs += 1;
      if (!out.write(`${text.replace(/[\r\n]+/g, ' ')}\n`)) await once(out, 'drain');
      onText?.(text);
    }
  } catch (err) {
    out.destroy();
    throw err;
  }
  out.end();
  await once(out, 'finish');
  return docs;
}

/**
 * Train on a text file written by writeTrainingText and write the HF tokenizer directory into `outDir`.
 * The training itself is one synchronous native call (it uses every core).
 */
export async function trainFromTextFile(
  textFile: string,
  opts: TrainTokenizerOptions,
  outDir: string,
  onPhase?: (phase: 'training' | 'writing') => void | Promise<void>,
): Promise<void> {
  await onPhase?.('training');
  const learned = learnVocabulary(textFile, opts.lowercase);
  await onPhase?.('writing');
  const vocab = withSpecialTokens(learned, opts.vocab_size);
  await writeHfTokenizerDir(bertWordPiece(vocab, opts.lowercase), vocab, opts.lowercase, outDir);
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
