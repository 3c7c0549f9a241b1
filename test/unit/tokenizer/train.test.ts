import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadTokenizer, trainWordPieceTokenizer } from '../../../lib/corpus';
import { ConfigError } from '../../../lib/errors';
import { NO_PYTHON, runCheck, withTmp } from '../corpus/helpers';

const TEXTS = [
  'The wing was tested in a wind tunnel. Lift increased with the angle of attack!',
  'Shock waves form when a body moves faster than sound.',
  'ירושלים היא עיר הבירה של ישראל. היא אחת הערים העתיקות בעולם!',
];

describe('trainWordPieceTokenizer', () => {
  it('writes an HF tokenizer directory with [PAD] [UNK] [CLS] [SEP] [MASK] as ids 0-4', async () => {
    await withTmp(async (dir) => {
      const tok = await trainWordPieceTokenizer(TEXTS, { vocab_size: 120, lowercase: true }, dir);
      const vocab = (await readFile(join(dir, 'vocab.txt'), 'utf8')).trimEnd().split('\n');
      assert.deepEqual(vocab.slice(0, 5), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
      assert.equal(vocab.length, 120);
      assert.equal(tok.vocabSize, 120);
      const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
      assert.equal(config.tokenizer_class, 'BertTokenizer');
      const map = JSON.parse(await readFile(join(dir, 'special_tokens_map.json'), 'utf8'));
      assert.equal(map.mask_token, '[MASK]');
      assert.deepEqual([tok.prefixIds, tok.suffixIds, tok.sliceSafe], [[2], [3], true]);
      const ids = (await tok.hf.encode('the wing')).getIds();
      assert.deepEqual([ids[0], ids.at(-1)], [2, 3]);
    });
  });

  it('encodes unseen characters as [UNK] instead of failing', async () => {
    await withTmp(async (dir) => {
      const tok = await trainWordPieceTokenizer(TEXTS, { vocab_size: 200, lowercase: true }, dir);
      assert.deepEqual((await tok.hf.encode('ж', null, { addSpecialTokens: false })).getIds(), [1]);
    });
  });

  it('rejects a vocab_size beyond what the npm trainer can learn', async () => {
    await withTmp(async (dir) => {
      await assert.rejects(
        trainWordPieceTokenizer(TEXTS, { vocab_size: 40000, lowercase: true }, dir),
        ConfigError,
      );
    });
  });

  it('loads in transformers.AutoTokenizer with the same ids as ours', { skip: NO_PYTHON }, async () => {
    await withTmp(async (dir) => {
      const tok = await trainWordPieceTokenizer(
        TEXTS,
        { vocab_size: 300, lowercase: false },
        join(dir, 'tok'),
      );
      const probe = [
        'Lift increased with the ANGLE of attack!',
        'ירושלים היא עיר הבירה.',
        'unseen words zebra',
      ];
      await writeFile(join(dir, 'texts.json'), JSON.stringify(probe));
      const py = await runCheck(['autotok', join(dir, 'tok'), join(dir, 'texts.json')]);
      assert.deepEqual(py.special, [0, 1, 2, 3, 4]);
      const ours = await Promise.all(probe.map(async (t) => (await tok.hf.encode(t)).getIds()));
      assert.deepEqual(py.ids, ours);
    });
  });
});

describe('loadTokenizer', () => {
  it('loads a directory or its tokenizer.json', async () => {
    await withTmp(async (dir) => {
      await trainWordPieceTokenizer(TEXTS, { vocab_size: 100, lowercase: true }, dir);
      const [a, b] = [await loadTokenizer(dir), await loadTokenizer(join(dir, 'tokenizer.json'))];
      assert.equal(a.file, b.file);
      assert.equal(a.specialTokens, 2);
    });
  });

  it('marks a byte-level BPE tokenizer as not slice-safe', async () => {
    await withTmp(async (dir) => {
      const spec = {
        version: '1.0',
        added_tokens: [],
        normalizer: null,
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
        post_processor: null,
        decoder: null,
        model: { type: 'BPE', vocab: { a: 0, Ġ: 1 }, merges: [], dropout: null, unk_token: null },
      };
      await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(spec));
      assert.equal((await loadTokenizer(dir)).sliceSafe, false);
    });
  });

  it('fails with ConfigError for a missing path', async () => {
    await assert.rejects(loadTokenizer('/nonexistent/model'), ConfigError);
  });
});
