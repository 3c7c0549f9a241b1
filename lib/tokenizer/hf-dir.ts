/** Saving a tokenizer as an HF tokenizer directory that transformers' AutoTokenizer loads offline. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HfTokenizer } from './hf';

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

const SPECIAL_TOKENS_MAP = {
  pad_token: '[PAD]',
  unk_token: '[UNK]',
  cls_token: '[CLS]',
  sep_token: '[SEP]',
  mask_token: '[MASK]',
};

/** tokenizer.json, vocab.txt (one token per line, line = id), tokenizer_config.json, special_tokens_map.json. */
export async function writeHfTokenizerDir(
  tok: HfTokenizer,
  vocab: readonly string[],
  lowercase: boolean,
  outDir: string,
): Promise<void> {
  tok.save(join(outDir, 'tokenizer.json'), true);
  const config = {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: lowercase,
    strip_accents: null,
    tokenize_chinese_chars: true,
    model_max_length: 512,
    clean_up_tokenization_spaces: true,
    ...SPECIAL_TOKENS_MAP,
  };
  await Promise.all([
    writeFile(join(outDir, 'vocab.txt'), `${vocab.join('\n')}\n`),
    writeFile(join(outDir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`),
    writeFile(join(outDir, 'special_tokens_map.json'), `${JSON.stringify(SPECIAL_TOKENS_MAP, null, 2)}\n`),
  ]);
}
